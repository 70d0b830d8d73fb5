"""`make bench`: the price crawler measured beside its baselines, in one run, one table.

    .venv/bin/python bench/run.py              # quick mode: 30 s per size (about 15 minutes)
    .venv/bin/python bench/run.py --full       # 5 min per size, 10 min at 1,000 tokens (about 1 hour)
    BENCH_MODE=full make bench                 # the same through make

What one run does (docs/performance.md explains every figure):

1. starts the benchmark's own Kafka and PostgreSQL (`bench/infra.py`, `.local/bench/`);
2. raw baselines: Kafka produce→consume round trip and throughput, COPY into token_prices;
3. per token count (100, 1,000, 10,000): the full local system — simulated market with no
   added latency, functions under functions-framework, local eventing plane — on the 5-s
   price cadence: tick-to-commit latency, late/skipped ticks, upstream requests, CPU and
   RSS per process (idle CPU of each function first); then the naive crawler and a COPY
   of the same rows;
4. stock analytics (bench/stocks.py): API → bronze and API → gold at the 6 s quote cadence;
5. capacity: the largest token count per tick with no late tick, with the APIs' budgets
   as configured and with them lifted (the pipeline alone);
6. profiles of the price function (py-spy): wall clock at 1,000 tokens, CPU at the first
   token count the pipeline cannot sustain;
7. prints the table and writes it with every figure to `.local/bench/results/`.

All traffic goes to 127.0.0.1; every phase is bounded in time, and the run stops by itself.
Ctrl-C stops everything it started.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import pickle
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/run.py` from anywhere

from bench import baselines, decoding, stocks
from bench.infra import BENCH_STATE_DIR, BenchInfra
from bench.report import TARGET_P99_TOKENS, CapacitySearch, Results, machine, render_markdown, render_text, to_json
from bench.scenarios import SystemRun, run_naive, run_system
from bench.system import UNIVERSE_HEADROOM, SystemConfig
from local.market.universe import MAX_SIZE

log = logging.getLogger("bench")

LARGEST_SET = MAX_SIZE - UNIVERSE_HEADROOM  # the market's universe holds 50,000 tokens
# The clients' rate limiters are sliding windows of 60 s that start full: a window measured
# under the APIs' budgets begins once a whole limiter window has passed (steady state).
BUDGET_WARMUP = 65.0
# Price function processes, like replicas on a cluster: a tick's jobs arrive together.
DEFAULT_PRICE_REPLICAS = 1


def warmup_for(config: SystemConfig, mode: Mode) -> float:
    """Seconds between the first tick and the measurement window."""
    return mode.warmup if config.lift_upstream_budgets else max(mode.warmup, BUDGET_WARMUP)


@dataclass(frozen=True)
class Mode:
    """How long each phase runs."""

    name: str
    sizes: tuple[int, ...]
    seconds_per_size: float
    seconds_at: dict[int, float]  # sizes that run longer than `seconds_per_size`
    warmup: float
    idle: float
    naive_seconds: float
    copy_batches: int
    copy_ceiling_rows: int
    kafka_round_trips: int
    kafka_messages: int
    capacity_seconds: float
    capacity_bisections: int
    lifted_start: int
    profile_seconds: float
    stock_ticks: int = 10  # quote ticks of the stock run (bench/stocks.py), 6 s apart


MODES = {
    "quick": Mode(
        "quick",
        (100, 1000, 10000),
        30,
        {},
        warmup=10,
        idle=15,
        naive_seconds=15,
        copy_batches=5,
        copy_ceiling_rows=50_000,
        kafka_round_trips=300,
        kafka_messages=5_000,
        capacity_seconds=20,
        capacity_bisections=1,
        lifted_start=2_000,
        profile_seconds=15,
        stock_ticks=10,
    ),
    "full": Mode(
        "full",
        (100, 1000, 10000),
        300,
        {1000: 600},
        warmup=15,
        idle=60,
        naive_seconds=60,
        copy_batches=10,
        copy_ceiling_rows=50_000,
        kafka_round_trips=2_000,
        kafka_messages=20_000,
        capacity_seconds=60,
        capacity_bisections=3,
        lifted_start=2_000,
        profile_seconds=30,
        stock_ticks=30,
    ),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quick", action="store_const", const="quick", dest="mode", help="30 s per size (default)")
    group.add_argument("--full", action="store_const", const="full", dest="mode", help="5 min per size, 10 at 1,000")
    parser.add_argument("--sizes", help="comma-separated token counts (default 100,1000,10000)")
    parser.add_argument("--duration", type=float, help="seconds per size (overrides the mode)")
    parser.add_argument(
        "--price-replicas",
        type=int,
        metavar="N",
        help=f"price function processes (env PRICE_REPLICAS, default {DEFAULT_PRICE_REPLICAS})",
    )
    parser.add_argument("--skip-capacity", action="store_true", help="no capacity search")
    parser.add_argument("--skip-baselines", action="store_true", help="no naive crawler, COPY or Kafka baseline")
    parser.add_argument("--skip-profile", action="store_true", help="no py-spy profiles")
    stock_group = parser.add_mutually_exclusive_group()
    stock_group.add_argument(
        "--skip-stocks", action="store_true", help="no stock analytics run (API → bronze / gold, bench/stocks.py)"
    )
    stock_group.add_argument(
        "--only-stocks", action="store_true", help="only the stock analytics run (no crawler sizes, capacity, profiles)"
    )
    parser.add_argument(
        "--all-schedules",
        action="store_true",
        help="keep the trending and metadata ticks running (default: the 5-s price tick only)",
    )
    parser.add_argument(
        "--lift-budgets",
        action="store_true",
        help="freshness runs with every upstream budget lifted (the pipeline alone)",
    )
    parser.add_argument(
        "--render", type=Path, metavar="RESULTS.pickle", help="print the table of an earlier run again (no measuring)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.render:
        results = pickle.loads(args.render.read_bytes())
        print(render_text(results))
        print("\n" + render_markdown(results))
        return 0
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S"
    )
    for noisy in ("httpx", "local.services.librdkafka"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    # Set before `machine()` reads it for the title, and inherited by every LocalSystem.
    os.environ["PRICE_REPLICAS"] = str(
        args.price_replicas or os.environ.get("PRICE_REPLICAS") or DEFAULT_PRICE_REPLICAS
    )
    mode = MODES[args.mode or ("full" if os.environ.get("BENCH_MODE", "").lower() == "full" else "quick")]
    if args.sizes:
        mode = replace(mode, sizes=tuple(int(s) for s in args.sizes.split(",")))
    if args.duration:
        mode = replace(mode, seconds_per_size=args.duration, seconds_at={})
    started = datetime.now(timezone.utc)
    out_dir = BENCH_STATE_DIR / "results"
    log_dir = BENCH_STATE_DIR / "logs" / started.strftime("%Y%m%dT%H%M%SZ")
    results = Results(mode.name, started, machine())
    results.notes += busy_machine_notes()

    infra = BenchInfra()
    try:
        log.info("bench %s mode: starting its Kafka and PostgreSQL (logs in %s)", mode.name, log_dir)
        infra.start()
        if not infra.commit_timestamps_on():
            results.notes.append("PostgreSQL has track_commit_timestamp off: commit time = job_logs.finished_at")
        if not args.skip_baselines and not args.only_stocks:
            measure_raw_limits(infra, mode, results)
        if not args.skip_stocks:
            log.info("stock analytics: %d quote ticks, API → bronze and API → gold", mode.stock_ticks)
            results.stocks = stocks.measure(infra, ticks=mode.stock_ticks)
            log.info("  %s", stocks_summary(results.stocks))
        for index, size in enumerate(() if args.only_stocks else mode.sizes):
            seconds = mode.seconds_at.get(size, mode.seconds_per_size)
            log.info("system, %s tokens, %.0f s window", f"{size:,}", seconds)
            config = SystemConfig(size, lift_upstream_budgets=args.lift_budgets, all_schedules=args.all_schedules)
            run = run_system(
                infra,
                config,
                duration=seconds,
                warmup=warmup_for(config, mode),
                log_dir=log_dir / f"system-{size}",
                idle_seconds=mode.idle if index == 0 else 0.0,
            )
            results.runs[size] = run
            log.info("  %s", summary(run))
            results.decoding[size] = decoding.decode_cost(infra, size, log_dir / f"decoding-{size}")
            log.info("  %s", decoding_summary(results.decoding[size]))
            if not args.skip_baselines:
                log.info("naive crawler, %s tokens", f"{size:,}")
                results.naive[size] = run_naive(
                    infra, size, duration=mode.naive_seconds, log_dir=log_dir / f"naive-{size}"
                )
                results.copy_per_tick[size] = baselines.copy_ingest(infra, size, mode.copy_batches)
        if not args.skip_capacity and not args.only_stocks:
            results.capacity.append(search_with_budgets(infra, mode, results, log_dir, args.all_schedules))
            results.capacity.append(search_lifted(infra, mode, log_dir, args.all_schedules))
        if not args.skip_profile and not args.only_stocks:
            profile(infra, mode, results, log_dir, args.all_schedules)
    except KeyboardInterrupt:
        log.warning("interrupted: printing what was measured so far")
        results.notes.append("INTERRUPTED: the table is incomplete")
    finally:
        infra.stop()

    text = render_text(results)
    print(text)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"bench-{mode.name}-{started:%Y%m%dT%H%M%SZ}"
    stem.with_suffix(".json").write_text(to_json(results))
    stem.with_suffix(".md").write_text(render_markdown(results) + "\n")
    stem.with_suffix(".pickle").write_bytes(pickle.dumps(results))  # for --render
    print(f"\nevery figure: {stem.with_suffix('.json')}\ntable in Markdown: {stem.with_suffix('.md')}")
    return 0


def measure_raw_limits(infra: BenchInfra, mode: Mode, results: Results) -> None:
    log.info(
        "raw Kafka round trip (%d messages) and throughput (%d job-sized messages)",
        mode.kafka_round_trips,
        mode.kafka_messages,
    )
    results.kafka = baselines.kafka_round_trip(infra, mode.kafka_round_trips, mode.kafka_messages)
    log.info("raw COPY, %s rows per batch", f"{mode.copy_ceiling_rows:,}")
    results.copy_ceiling = baselines.copy_ingest(infra, mode.copy_ceiling_rows, max(3, mode.copy_batches // 2))


def search_with_budgets(
    infra: BenchInfra, mode: Mode, results: Results, log_dir: Path, all_schedules: bool
) -> CapacitySearch:
    """Bisect between the largest sustained and the smallest failing size of the freshness runs."""
    search = CapacitySearch("APIs' budgets as configured", list(results.runs.values()))
    for _ in range(mode.capacity_bisections):
        low = search.best.config.size if search.best else None
        high = search.first_failing.config.size if search.first_failing else None
        if high is None or (low is not None and high - low <= max(50, low // 10)):
            break
        size = nice(math.sqrt(low * high) if low else high / 3)
        search.probes.append(probe(infra, SystemConfig(size, all_schedules=all_schedules), mode, log_dir))
    return search


def search_lifted(infra: BenchInfra, mode: Mode, log_dir: Path, all_schedules: bool) -> CapacitySearch:
    """Double from `lifted_start` until a size is not sustained, then bisect."""
    search = CapacitySearch("APIs' budgets lifted (the pipeline alone)")
    size = mode.lifted_start
    while True:
        run = probe(infra, SystemConfig(size, lift_upstream_budgets=True, all_schedules=all_schedules), mode, log_dir)
        search.probes.append(run)
        if not run.sustained or size >= LARGEST_SET:
            break
        size = min(LARGEST_SET, size * 2)
    for _ in range(mode.capacity_bisections):
        low = search.best.config.size if search.best else None
        high = search.first_failing.config.size if search.first_failing else None
        if high is None or (low is not None and high - low <= max(50, low // 10)):
            break
        size = nice(math.sqrt(low * high) if low else high / 2)
        search.probes.append(
            probe(infra, SystemConfig(size, lift_upstream_budgets=True, all_schedules=all_schedules), mode, log_dir)
        )
    return search


def probe(infra: BenchInfra, config: SystemConfig, mode: Mode, log_dir: Path) -> SystemRun:
    label = "lifted" if config.lift_upstream_budgets else "budgets"
    log.info("capacity probe (%s): %s tokens, %.0f s", label, f"{config.size:,}", mode.capacity_seconds)
    run = run_system(
        infra,
        config,
        duration=mode.capacity_seconds,
        warmup=warmup_for(config, mode),
        log_dir=log_dir / f"capacity-{label}-{config.size}",
    )
    log.info("  %s", summary(run))
    return run


def profile(infra: BenchInfra, mode: Mode, results: Results, log_dir: Path, all_schedules: bool) -> None:
    """Wall-clock profile at the p99 target's size; CPU profile where the pipeline saturates."""
    log.info("profile (wall clock inside jobs): %s tokens", f"{TARGET_P99_TOKENS:,}")
    config = SystemConfig(TARGET_P99_TOKENS, all_schedules=all_schedules)
    run = run_system(
        infra,
        config,
        duration=mode.profile_seconds + 5,
        warmup=warmup_for(config, mode),
        log_dir=log_dir / "profile-wall",
        profile_seconds=mode.profile_seconds,
        profile_wall_clock=True,
    )
    results.profile = {"wall_clock_at_target": run.profile}
    lifted = next((s for s in results.capacity if "lifted" in s.label), None)
    failing = lifted.first_failing if lifted else None
    size = failing.config.size if failing else max(mode.sizes)
    log.info("profile (CPU): %s tokens, budgets lifted", f"{size:,}")
    run = run_system(
        infra,
        SystemConfig(size, lift_upstream_budgets=True, all_schedules=all_schedules),
        duration=mode.profile_seconds + 5,
        warmup=mode.warmup,
        log_dir=log_dir / "profile-cpu",
        profile_seconds=mode.profile_seconds,
    )
    results.profile["cpu_at_saturation"] = run.profile
    results.profile["cpu_at_saturation_tokens"] = size
    results.profile_run = run


def nice(value: float) -> int:
    """Round to two significant digits (a token count someone can read)."""
    digits = max(0, int(math.log10(value)) - 1)
    return int(round(value / 10**digits) * 10**digits)


def summary(run: SystemRun) -> str:
    f = run.freshness
    p = f.tick_to_commit
    fmt = lambda s: "-" if s is None else f"{s * 1000:.0f} ms"  # noqa: E731
    return (
        f"{run.seeded.symbols:,} tokens: p50 {fmt(p.p50)}, p99 {fmt(p.p99)}, max {fmt(p.max)}; "
        f"{f.late} late + {f.skipped} skipped + {f.short} short of {run.ticks} ticks; "
        f"{run.prices_per_second:,.0f} prices/s" + (f"; CRASHED: {', '.join(run.crashed)}" if run.crashed else "")
    )


def stocks_summary(figures: stocks.StockFigures) -> str:
    fmt = lambda s: "-" if s is None else f"{s:.2f} s"  # noqa: E731
    return (
        f"API → bronze p50 {fmt(figures.p50('API → bronze'))}, p99 {fmt(figures.p99('API → bronze'))}; "
        f"API → gold p50 {fmt(figures.p50('API → gold'))}, p99 {fmt(figures.p99('API → gold'))} "
        f"({figures.new_quotes} new quotes, {len(figures.build_seconds)} builds)"
    )


def decoding_summary(figures: decoding.DecodeFigures) -> str:
    per_k = ", ".join(f"{name} {seconds * 1000:.1f} ms" for name, seconds in figures.per_thousand.items())
    return f"reading {figures.answers} DexScreener answers of {figures.tokens:,} tokens, per 1,000 tokens: {per_k}"


def busy_machine_notes(sample_seconds: float = 2.0) -> list[str]:
    """Other programs using CPU now (the machine is shared): named in the notes under the table."""
    import psutil

    mine = {os.getpid()}
    processes = [p for p in psutil.process_iter(["pid", "name", "cmdline"]) if p.pid not in mine]
    for p in processes:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            pass
    time.sleep(sample_seconds)
    busy = []
    for p in processes:
        try:
            share = p.cpu_percent(None)
        except psutil.Error:
            continue
        if share >= 10:
            command = " ".join(p.info["cmdline"] or [p.info["name"] or "?"])[:80]
            busy.append(f"{share:.0f}% {command}")
    if not busy:
        return []
    return ["NOTE: other programs were using CPU when the run began (figures may be noisy): " + "; ".join(busy)]


if __name__ == "__main__":
    raise SystemExit(main())
