"""The one table `make bench` prints: our figures beside the baselines and the targets.

Columns: what is measured, at which token count, our figure, the naive crawler's, our
figure as a ratio to it, the physical limit of this machine (raw COPY, raw Kafka, the
upstream minimum), our figure as a ratio to that, the target, and where we stand.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.baselines import CopyFigures, KafkaFigures
from bench.decoding import DecodeFigures
from bench.scenarios import FUNCTION_NAMES, NaiveRun, SystemRun
from bench.stocks import GOALS as STOCK_GOALS
from bench.stocks import ORIGINAL as STOCK_ORIGINAL
from bench.stocks import StockFigures
from bench.ticks import Distribution
from bench.upstream import APIS, minimum_per_tick, observed_per_tick, per_minute_against_limit

MB = 1024 * 1024
TARGET_P99_SECONDS = 0.100
TARGET_P99_TOKENS = 1000
TARGET_PRICES_PER_SECOND = 10_000
TARGET_TOKENS_PER_TICK = 50_000
TARGET_COPY_SHARE = 0.25
TARGET_RSS_BYTES = 120 * MB
TARGET_IDLE_CPU = 0.01


@dataclass
class CapacitySearch:
    """Probes of one configuration and the largest sustained token count found."""

    label: str
    probes: list[SystemRun] = field(default_factory=list)

    @property
    def best(self) -> SystemRun | None:
        passing = [p for p in self.probes if p.sustained]
        return max(passing, key=lambda p: p.seeded.symbols, default=None)

    @property
    def first_failing(self) -> SystemRun | None:
        failing = [p for p in self.probes if not p.sustained]
        return min(failing, key=lambda p: p.seeded.symbols, default=None)


@dataclass
class Results:
    mode: str
    started_at: datetime
    machine: dict[str, Any]
    runs: dict[int, SystemRun] = field(default_factory=dict)
    naive: dict[int, NaiveRun] = field(default_factory=dict)
    copy_per_tick: dict[int, CopyFigures] = field(default_factory=dict)
    copy_ceiling: CopyFigures | None = None
    decoding: dict[int, DecodeFigures] = field(default_factory=dict)
    kafka: KafkaFigures | None = None
    capacity: list[CapacitySearch] = field(default_factory=list)
    profile: dict[str, Any] | None = None
    profile_run: SystemRun | None = None
    notes: list[str] = field(default_factory=list)
    stocks: StockFigures | None = None  # bench/stocks.py, when run


def machine() -> dict[str, Any]:
    """CPU count, memory, OS and Python of this machine, and its load when the run began."""
    import os

    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "price_replicas": int(os.environ.get("PRICE_REPLICAS") or 1),
    }


def _cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- formatting helpers ------------------------------------------------------------------------


def ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:,.0f}" if seconds >= 0.01 else f"{seconds * 1000:.2f}"


def triple(d: Distribution) -> str:
    return "-" if d.p50 is None else f"{ms(d.p50)} / {ms(d.p99)} / {ms(d.max)}"


def ratio(ours: float | None, base: float | None) -> str:
    if ours is None or base is None or base == 0:
        return "-"
    value = ours / base
    return f"{value:,.2f}×" if value < 100 else f"{value:,.0f}×"


def number(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def missed_by(actual: float, target: float, *, lower_is_better: bool) -> str:
    """'met', or 'MISSED (<factor>× off)': how many times too slow, too big or too few."""
    ok = actual <= target if lower_is_better else actual >= target
    if ok:
        return "met"
    factor = actual / target if lower_is_better else (target / actual if actual else float("inf"))
    return f"MISSED ({factor:,.1f}× off)"


# --- the table ------------------------------------------------------------------------------------

HEADER = ("measure", "N", "ours", "naive crawler", "ours÷naive", "physical limit", "ours÷limit", "target", "status")


def rows(results: Results) -> list[tuple[str, ...]]:
    """Every row of the table, in order."""
    out: list[tuple[str, ...]] = []
    kafka_p50 = results.kafka.round_trip.p50 if results.kafka else None

    for size, run in sorted(results.runs.items()):
        n = f"{run.seeded.symbols:,}"
        naive = results.naive.get(size)
        fresh = run.freshness
        naive_latency = naive.result["latency"] if naive else {}
        copy = results.copy_per_tick.get(size)
        target_here = size == TARGET_P99_TOKENS
        p99_status = (
            missed_by(fresh.tick_to_commit.p99 or float("inf"), TARGET_P99_SECONDS, lower_is_better=True)
            if target_here
            else ""
        )
        out.append(
            (
                "tick→commit p50 / p99 / max, ms",
                n,
                triple(fresh.tick_to_commit),
                _naive_triple(naive_latency),
                ratio(fresh.tick_to_commit.p99, naive_latency.get("p99")),
                f"COPY of the tick: {ms(copy.batch_seconds)}" if copy else "-",
                ratio(fresh.tick_to_commit.p99, copy.batch_seconds if copy else None),
                "p99 < 100 ms" if target_here else "",
                p99_status,
            )
        )
        out.append(
            (
                "  tick→Kafka / Kafka→function / in function, p50 ms",
                n,
                f"{ms(fresh.tick_to_produced.p50)} / {ms(fresh.produced_to_received.p50)} / "
                f"{ms(fresh.received_to_commit.p50)}",
                "",
                "",
                f"Kafka round trip: {ms(kafka_p50)}",
                ratio(fresh.produced_to_received.p50, kafka_p50),
                "",
                "",
            )
        )
        out.append(
            (
                "  same, p99 ms",
                n,
                f"{ms(fresh.tick_to_produced.p99)} / {ms(fresh.produced_to_received.p99)} / "
                f"{ms(fresh.received_to_commit.p99)}",
                "",
                "",
                "",
                "",
                "",
                "",
            )
        )
        stale = fresh.stale
        naive_late = sum(t["late"] + t.get("skipped_after", 0) for t in naive.ticks) if naive else None
        naive_ticks = (len(naive.ticks) + sum(t.get("skipped_after", 0) for t in naive.ticks)) if naive else None
        late_target = "0 over 10 min" if target_here else ""
        late_status = ("met" if stale == 0 else f"MISSED ({stale} of {run.ticks})") if target_here else ""
        if target_here and stale == 0 and run.window_seconds < 600:
            late_status = f"met over {run.window_seconds / 60:.1f} min (10 min: full mode)"
        out.append(
            (
                f"late + skipped + short ticks (window {run.window_seconds:.0f} s)",
                n,
                f"{fresh.late} + {fresh.skipped} + {fresh.short} of {run.ticks}",
                f"{naive_late} of {naive_ticks}" if naive else "-",
                "",
                "",
                "",
                late_target,
                late_status,
            )
        )
        naive_rate = naive.result["rows"] / naive.result["elapsed"] if naive else None
        out.append(
            (
                "prices committed per second",
                n,
                number(run.prices_per_second),
                number(naive_rate),
                ratio(run.prices_per_second, naive_rate),
                f"COPY: {number(copy.rows_per_second)}" if copy else "-",
                _percent(run.prices_per_second, copy.rows_per_second if copy else None),
                "",
                "",
            )
        )
        priced = fresh.prices / fresh.expected_prices if fresh.expected_prices else None
        out.append(
            (
                "  prices per tick ÷ tokens scheduled",
                n,
                _percent_value(priced),
                _percent_value(naive.result["rows"] / (len(naive.ticks) * size)) if naive and naive.ticks else "-",
                "",
                "",
                "",
                "",
                "",
            )
        )
        minimum = minimum_per_tick(run.seeded)
        observed = observed_per_tick(run.upstream, run.window_seconds / 5)
        naive_per_tick = (naive.result["requests"] / len(naive.ticks)) if naive and naive.ticks else None
        for api in APIS:
            status = (
                missed_by(observed[api], minimum[api] * 1.001, lower_is_better=True)
                if minimum[api]
                else ("met" if observed[api] == 0 else "MISSED (minimum is 0)")
            )
            if status == "met" and observed[api] < 0.95 * minimum[api] and (priced or 0) < 0.99:
                status = "under the minimum: budget spent, prices missing"
            out.append(
                (
                    f"upstream requests per tick: {api}",
                    n,
                    number(observed[api], 2),
                    number(naive_per_tick, 0) if api == "binance" else "",
                    "",
                    f"minimum: {number(minimum[api], 2)}",
                    ratio(observed[api], minimum[api]),
                    "= minimum",
                    status,
                )
            )
        budget = per_minute_against_limit(run.upstream, run.window_seconds)
        out.append(
            (
                "  per minute vs documented limit",
                n,
                ", ".join(f"{api} {used:,.0f}/{limit:,} {unit}" for api, (used, limit, unit) in budget.items()),
                "",
                "",
                "",
                "",
                "",
                "",
            )
        )
        ours_cpu = _cpu(run, FUNCTION_NAMES + ("eventing",))
        infra_cpu = _cpu(run, ("kafka", "postgres"))
        per_k = 1000 / run.prices_in_window if run.prices_in_window else None
        naive_cpu = naive.processes["naive"].cpu_seconds if naive else None
        naive_pg = pg.cpu_seconds if naive and (pg := naive.processes.get("postgres")) else None
        naive_per_k = 1000 / naive.result["rows"] if naive and naive.result["rows"] else None
        out.append(
            (
                "CPU s per 1,000 prices: functions + eventing",
                n,
                _times(ours_cpu, per_k, 3),
                _times(naive_cpu, naive_per_k, 3),
                ratio(_mul(ours_cpu, per_k), _mul(naive_cpu, naive_per_k)),
                "",
                "",
                "",
                "",
            )
        )
        out.append(
            (
                "  + Kafka + PostgreSQL (naive: + PostgreSQL)",
                n,
                _times(_add(ours_cpu, infra_cpu), per_k, 3),
                _times(_add(naive_cpu, naive_pg), naive_per_k, 3),
                ratio(_mul(_add(ours_cpu, infra_cpu), per_k), _mul(_add(naive_cpu, naive_pg), naive_per_k)),
                "",
                "",
                "",
                "",
            )
        )
        out.append(
            (
                "  simulated market (the outside world), CPU s per 1,000",
                n,
                _times(_cpu(run, ("market",)), per_k, 3),
                "",
                "",
                "",
                "",
                "",
                "",
            )
        )
        out.append(("  CPU per process in the window, % of one core", n, _shares(run), "", "", "", "", "", ""))
        decoding = results.decoding.get(size)
        floor = _floor_per_thousand(results, run, decoding)
        out.append(
            (
                "  our side (+ Kafka + PostgreSQL) ÷ floor (exact decode + COPY + 1 Kafka message per job)",
                n,
                _times(_add(ours_cpu, infra_cpu), per_k, 3),
                "",
                "",
                f"floor: {floor:.4f}" if floor is not None else "-",
                ratio(_mul(_add(ours_cpu, infra_cpu), per_k), floor),
                "≤ 5× floor",
                missed_by(_mul(_add(ours_cpu, infra_cpu), per_k) or float("inf"), 5 * floor, lower_is_better=True)
                if floor
                else "",
            )
        )
        if decoding and decoding.per_thousand:
            now, before, least = (
                decoding.per_thousand.get(name)
                for name in ("pool fields (now)", "whole body (before)", "floor: priceUsd only")
            )
            out.append(
                (
                    "reading DexScreener answers, CPU ms per 1,000 tokens: now (before)",
                    f"{decoding.tokens:,} on DEX",
                    f"{number(_mul(now, 1000), 1)} ({number(_mul(before, 1000), 1)})",
                    "",
                    ratio(now, before) + " of before" if now and before else "",
                    f"floor (priceUsd only): {number(_mul(least, 1000), 2)}",
                    ratio(now, least),
                    "",
                    "",
                )
            )
            out.append(
                (
                    "  answers, KB per token",
                    f"{decoding.tokens:,} on DEX",
                    f"{decoding.answers} answers, {decoding.bytes_per_token / 1000:.1f} KB/token",
                    "",
                    "",
                    "",
                    "",
                    "",
                    "",
                )
            )

    out += stock_rows(results.stocks)

    for search in results.capacity:
        best = search.best
        fail = search.first_failing
        copy = results.copy_ceiling
        tokens = best.seeded.symbols if best else 0
        rate = best.prices_per_second if best else 0.0
        naive_cap = _naive_capacity(results)
        out.append(
            (
                f"capacity, {search.label}: tokens per 5-s tick",
                "",
                f"{tokens:,}" + (f" (fails at {fail.seeded.symbols:,})" if fail else " (largest tried)"),
                number(naive_cap),
                ratio(tokens, naive_cap),
                f"COPY: {number(copy.rows_per_second * 5)}" if copy else "-",
                _percent(tokens, copy.rows_per_second * 5 if copy else None),
                f"≥ {TARGET_TOKENS_PER_TICK:,}",
                missed_by(tokens, TARGET_TOKENS_PER_TICK, lower_is_better=False),
            )
        )
        out.append(
            (
                f"capacity, {search.label}: prices per second",
                "",
                number(rate),
                number(naive_cap / 5 if naive_cap else None),
                ratio(rate, naive_cap / 5 if naive_cap else None),
                f"COPY: {number(copy.rows_per_second)}" if copy else "-",
                _percent(rate, copy.rows_per_second if copy else None),
                f"≥ {TARGET_PRICES_PER_SECOND:,}/s and ≥ 25% of COPY",
                _both(
                    missed_by(rate, TARGET_PRICES_PER_SECOND, lower_is_better=False),
                    missed_by(rate, TARGET_COPY_SHARE * copy.rows_per_second, lower_is_better=False) if copy else "",
                ),
            )
        )

    first = next((r for r in results.runs.values() if r.idle), None)
    peak_runs = list(results.runs.values()) + [p for s in results.capacity for p in s.probes]
    for name in FUNCTION_NAMES + ("eventing",) if peak_runs else ():  # none: a stock-only run
        peak = max((r.processes[name].peak_rss_bytes for r in peak_runs if name in r.processes), default=0)
        naive_peak = max((n.processes["naive"].peak_rss_bytes for n in results.naive.values()), default=None)
        is_function = name in FUNCTION_NAMES
        out.append(
            (
                f"peak RSS of one process: {name}",
                "all runs",
                f"{peak / MB:,.0f} MB",
                f"{naive_peak / MB:,.0f} MB" if naive_peak and name == "price" else "",
                "",
                "",
                "",
                "< 120 MB" if is_function else "",
                missed_by(peak, TARGET_RSS_BYTES, lower_is_better=True) if is_function else "",
            )
        )
    if first:
        for name in FUNCTION_NAMES:
            share = first.idle[name].cpu_seconds / first.idle_seconds if name in first.idle else None
            out.append(
                (
                    f"idle CPU: {name}",
                    f"{first.idle_seconds:.0f} s idle",
                    _percent_value(share, 2),
                    "",
                    "",
                    "",
                    "",
                    "< 1%",
                    missed_by(share, TARGET_IDLE_CPU, lower_is_better=True) if share is not None else "-",
                )
            )
    if results.kafka:
        k = results.kafka
        out.append(
            (
                "raw Kafka produce→consume round trip p50 / p99 / max, ms",
                "",
                "",
                "",
                "",
                triple(k.round_trip),
                "",
                "",
                "",
            )
        )
        out.append(
            (
                "raw Kafka throughput, job-sized messages per second",
                "",
                "",
                "",
                "",
                f"{k.messages_per_second:,.0f} × {k.message_bytes} B",
                "",
                "",
                "",
            )
        )
    if results.copy_ceiling:
        c = results.copy_ceiling
        out.append(
            (
                "raw COPY into token_prices, rows per second",
                f"{c.rows_per_batch:,}/batch",
                "",
                "",
                "",
                f"{c.rows_per_second:,.0f}",
                "",
                "",
                "",
            )
        )
    return out


def stock_rows(figures: StockFigures | None) -> list[tuple[str, ...]]:
    """API → bronze and API → gold of the stock run, beside the original's timeline and the goals."""
    if figures is None:
        return []
    out: list[tuple[str, ...]] = []
    for name in STOCK_ORIGINAL:
        p50, p99 = figures.p50(name), figures.p99(name)
        original, goal = STOCK_ORIGINAL[name], STOCK_GOALS[name]
        out.append(
            (
                f"stock quote {name} p50 / p99, s",
                f"5 symbols, {figures.ticks} ticks",
                "-" if p50 is None or p99 is None else f"{p50:.3f} / {p99:.3f}",
                f"the original: ~{original:.0f}",
                ratio(p99, original),
                "",
                "",
                f"p99 ≤ {goal:.0f} s",
                "MISSED (nothing measured)" if p99 is None else missed_by(p99, goal, lower_is_better=True),
            )
        )
    if figures.build_seconds:
        out.append(
            (
                "  dbt build (6 models, 41 tests) p50 / max, s",
                f"{len(figures.build_seconds)} builds",
                f"{statistics.median(figures.build_seconds):.1f} / {max(figures.build_seconds):.1f}",
                "",
                "",
                "",
                "",
                "",
                "long-lived worker" if figures.worker else "fresh process per build",
            )
        )
    return out


def _floor_per_thousand(results: Results, run: SystemRun, decoding: DecodeFigures | None) -> float | None:
    """CPU s per 1,000 prices of the least work a price path can do in this run: the floor
    decode of its DexScreener share, a COPY of the rows, one Kafka message per job."""
    copy = results.copy_per_tick.get(run.config.size) or results.copy_ceiling
    kafka = results.kafka
    floor_decode = decoding.per_thousand.get("floor: priceUsd only") if decoding else None
    if copy is None or kafka is None or floor_decode is None or not run.seeded.symbols:
        return None
    dex_share = decoding.tokens / run.seeded.symbols if decoding else 0.0
    jobs_per_thousand = 1000 * run.seeded.jobs_per_tick / run.seeded.symbols
    return floor_decode * dex_share + 1000 / copy.rows_per_second + jobs_per_thousand / kafka.messages_per_second


def _naive_triple(latency: dict[str, Any]) -> str:
    if not latency or latency.get("p50") is None:
        return "-"
    return f"{ms(latency['p50'])} / {ms(latency['p99'])} / {ms(latency['max'])}"


def _naive_capacity(results: Results) -> float | None:
    """Tokens per 5-s tick the naive crawler could finish: its fastest crawl rate × 5 s."""
    rates = [n.result["rows_per_second_busy"] for n in results.naive.values() if n.result.get("rows_per_second_busy")]
    return max(rates) * 5 if rates else None


def _cpu(run: SystemRun, names: tuple[str, ...]) -> float | None:
    found = [run.processes[n].cpu_seconds for n in names if n in run.processes]
    return sum(found) if found else None


def _shares(run: SystemRun) -> str:
    parts = []
    total = run.window_seconds
    for group in ("price", "scheduler", "eventing", "kafka", "postgres", "market"):
        if group in run.processes:
            parts.append(f"{group} {100 * run.processes[group].cpu_seconds / total:.0f}%")
    return ", ".join(parts)


def _add(a: float | None, b: float | None) -> float | None:
    return None if a is None else a + (b or 0.0)


def _mul(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a * b


def _times(cpu: float | None, per_k: float | None, digits: int) -> str:
    value = _mul(cpu, per_k)
    return "-" if value is None else f"{value:.{digits}f}"


def _percent(ours: float | None, base: float | None) -> str:
    return "-" if not ours or not base else f"{100 * ours / base:.1f}%"


def _percent_value(share: float | None, digits: int = 1) -> str:
    return "-" if share is None else f"{100 * share:.{digits}f}%"


def _both(*statuses: str) -> str:
    missed = [s for s in statuses if s and s != "met"]
    return "; ".join(missed) if missed else "met"


def render_text(results: Results) -> str:
    """The table as aligned plain text, with a title line."""
    body = [HEADER, *rows(results)]
    widths = [max(len(r[i]) for r in body) for i in range(len(HEADER))]
    lines = [title(results), ""]
    for i, row in enumerate(body):
        lines.append("  ".join(cell.ljust(widths[j]) for j, cell in enumerate(row)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines += ["", *results.notes]
    if results.profile:
        lines += ["", render_profiles(results)]
    return "\n".join(lines)


def render_profiles(results: Results) -> str:
    """Where the price function's time goes (py-spy), one block per profile."""
    lines = []
    for name, profile in (results.profile or {}).items():
        if not isinstance(profile, dict):
            continue
        lines.append(f"profile {name} ({profile['kind']}, {profile['samples']} samples, raw: {profile['raw_file']}):")
        lines += [f"  {share:5.1f}%  {bucket}" for bucket, share in profile["buckets"]]
        lines.append("  our functions, inclusive:")
        lines += [f"  {share:5.1f}%  {frame}" for frame, share in profile["inclusive"][:10]]
        lines.append("  frames on top of the stack (self):")
        lines += [f"  {share:5.1f}%  {frame}" for frame, share in profile["self"][:8]]
    return "\n".join(lines)


def render_markdown(results: Results) -> str:
    """The same table in Markdown (docs/performance.md)."""
    body = rows(results)
    escape = lambda cell: cell.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def title(results: Results) -> str:
    m = results.machine
    return (
        f"price-crawler benchmark, {results.mode} mode — {results.started_at:%Y-%m-%d %H:%M} UTC — "
        f"{m['cpus']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, Python {m['python']}, "
        f"load average at start {m['load_average_at_start']}; price function: "
        f"{m.get('price_replicas', 1)} process{'es' if m.get('price_replicas', 1) > 1 else ''}"
    )


def to_json(results: Results) -> str:
    """Every figure of the run, for docs and for comparing runs."""

    def default(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, datetime):
            return value.isoformat()
        return str(value)

    payload = dataclasses.asdict(results)
    payload["table"] = [dict(zip(HEADER, row)) for row in rows(results)]
    return json.dumps(payload, default=default, indent=1)
