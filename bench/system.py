"""The full local system for one token count: simulated market, every function under
functions-framework, the local eventing plane — the processes `make up` runs, started
with `local.stack`'s own supervision code, on the benchmark's Kafka and PostgreSQL.

Differences from `make up`, all for measuring:
- ports are picked free, so a developer's `make up` can run beside a benchmark;
- the market serves `size` tokens (plus headroom), and the token set is seeded (below);
- by default the eventing plane fires only the top-100 price PingSource, so every
  upstream request and every CPU second of the window belongs to the 5-s price cadence
  (`all_schedules=True` keeps the trending and metadata ticks as well);
- `lift_upstream_budgets=True` raises every client-side rate limit and the market's
  Binance weight limit out of reach, to measure the pipeline itself rather than the
  APIs' budgets (the capacity search).

Seeding: the metadata job reads one `/coins/markets` page (at most 250 coins) and then
spends minutes on `/coins/{id}` details at CoinGecko's 25 calls/min, so for any size the
benchmark builds the set the way that job does — `/coins/markets` pages, the stablecoin
category and `/coins/list?include_platform=true` from the market, normalised by
`top100_profiles` and stored with `store.upsert_tokens` + `store.set_membership` — only
paginated and without the details, which no price job reads.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench.infra import BENCH_STATE_DIR, BenchInfra
from local import services
from local.market.universe import MAX_SIZE
from local.services import PROJECT_ROOT
from local.stack import (
    FUNCTIONS,
    SIMULATED_UPSTREAMS,
    Child,
    Console,
    Process,
    function_process,
    replica_name,
    replica_urls,
    stop_children,
)

log = logging.getLogger(__name__)

PRICE_SCHEDULE = "top100-price"
PRICE_PING_SOURCE = "top100-price-tick"
READY_TIMEOUT = 90.0
HUGE_BUDGET = "100000000"  # requests or weight per minute that nothing in a benchmark reaches
# Coins ranked among the top `size` that are stablecoins (never priced): the universe
# gets this many more tokens so that the set still holds `size` tradable ones.
UNIVERSE_HEADROOM = 100


@dataclass(frozen=True)
class SystemConfig:
    """What one run of the system looks like."""

    size: int
    lift_upstream_budgets: bool = False
    all_schedules: bool = False
    seed: int = 7


@dataclass
class SeededSet:
    """The token set as stored, and what pricing it needs from each upstream at the minimum."""

    members: int
    symbols: int  # what a tick schedules: members minus duplicate/invalid symbols
    jobs_per_tick: int
    on_binance: int
    dex_by_chain: dict[str, int] = field(default_factory=dict)
    coingecko_only: int = 0
    unpriceable: int = 0


class LocalSystem:
    """Start, seed, observe and stop the system for one `SystemConfig`."""

    def __init__(self, infra: BenchInfra, config: SystemConfig, log_dir: Path):
        self.infra = infra
        self.config = config
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._console_file = open(log_dir / "console.log", "a", buffering=1)
        self.console = Console(self._console_file)
        self.market_port = services.free_port()
        self.eventing_port = services.free_port()
        # One port per replica ($<NAME>_REPLICAS, as for `make up`); the first is the function's own.
        self.function_ports = {f.name: [services.free_port() for _ in range(f.replicas)] for f in FUNCTIONS}
        self.children: dict[str, Child] = {}
        self.env = self._environment()

    # --- configuration ----------------------------------------------------------------
    @property
    def market_url(self) -> str:
        return f"http://127.0.0.1:{self.market_port}"

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            KAFKA_BOOTSTRAP_SERVERS=self.infra.bootstrap,
            DATABASE_URL=self.infra.database_url,
            PYTHONUNBUFFERED="1",
            PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            MARKET_URL=self.market_url,
            TOP100_SIZE=str(self.config.size),
            EVENTING_PORT=str(self.eventing_port),
        )
        for function in FUNCTIONS:
            ports = self.function_ports[function.name]
            env[f"{function.name.upper()}_FUNCTION_URL"] = replica_urls(ports)
            env[f"{function.name.upper()}_FUNCTION_PORT"] = str(ports[0])
        for api, prefix in SIMULATED_UPSTREAMS.items():
            env[f"{api}_BASE_URL"] = f"{self.market_url}/{prefix}"  # never a live API from a benchmark
        if not self.config.all_schedules:
            env["EVENTING_MANIFESTS_DIR"] = str(_price_cadence_manifests())
        if self.config.lift_upstream_budgets:
            for api in SIMULATED_UPSTREAMS:
                env[f"{api}_RATE_LIMIT_PER_MINUTE"] = HUGE_BUDGET
            env["BINANCE_WEIGHT_LIMIT_PER_MINUTE"] = HUGE_BUDGET
        return env

    def universe_size(self) -> int:
        return min(MAX_SIZE, max(150, self.config.size + UNIVERSE_HEADROOM))

    def _specs(self) -> list[Process]:
        python = sys.executable
        weight = HUGE_BUDGET if self.config.lift_upstream_budgets else "6000"
        specs = [
            Process(
                "market",
                (
                    python,
                    "-m",
                    "local.market",
                    "--port",
                    str(self.market_port),
                    "--seed",
                    str(self.config.seed),
                    "--universe-size",
                    str(self.universe_size()),
                    "--binance-weight-limit",
                    weight,
                ),
                requires=PROJECT_ROOT / "local" / "market" / "__main__.py",
                ready_port=self.market_port,
                # The outside world should cost the run as little CPU as it can: the tests
                # keep checking that no body carries a float; here that walk is skipped.
                env={"MARKET_WIRE_STRICT": "0"},
            )
        ]
        for name, ports in self.function_ports.items():
            specs += [function_process(name, index, port) for index, port in enumerate(ports)]
        specs.append(
            Process(
                "eventing",
                (python, "-m", "local.eventing"),
                requires=PROJECT_ROOT / "local" / "eventing" / "__main__.py",
                stage=1,
                ready_url=f"http://127.0.0.1:{self.eventing_port}/health",
            )
        )
        return specs

    # --- lifecycle ----------------------------------------------------------------------
    def start(self, stage: int, only: frozenset[str] | None = None) -> None:
        """Start the processes of one stage (0: market and functions, 1: eventing) and wait until ready.

        `only` limits it to those names (the naive baseline needs the market alone).
        """
        started = []
        for spec in (s for s in self._specs() if s.stage == stage and (only is None or s.name in only)):
            if not spec.requires.exists():
                raise RuntimeError(f"{spec.name}: {spec.requires} does not exist")
            child = Child(spec, self.env, self.console, self.log_dir)
            child.start()
            self.children[spec.name] = child
            started.append(child)
        deadline = time.monotonic() + READY_TIMEOUT
        pending = list(started)
        while pending:
            for child in list(pending):
                if not child.running():
                    code = child.popen.returncode if child.popen is not None else None
                    raise RuntimeError(
                        f"{child.spec.name} exited with {code}; see {self.log_dir / (child.spec.name + '.log')}"
                    )
                if child.probe():
                    pending.remove(child)
            if pending and time.monotonic() > deadline:
                raise RuntimeError(f"not ready after {READY_TIMEOUT:.0f} s: {', '.join(c.spec.name for c in pending)}")
            time.sleep(0.2)

    def check_alive(self) -> list[str]:
        """Names of children that exited (a crash during a window invalidates it)."""
        return [name for name, child in self.children.items() if not child.running()]

    def stop(self) -> None:
        stop_children(self.children.values())
        self.children.clear()
        self._console_file.close()

    def pids(self) -> dict[str, list[int]]:
        """Process ids by function (a function's replicas together), market and eventing."""
        replicas = {replica_name(f.name, i): f.name for f in FUNCTIONS for i in range(len(self.function_ports[f.name]))}
        found: dict[str, list[int]] = {}
        for name, child in self.children.items():
            if child.popen is not None:
                found.setdefault(replicas.get(name, name), []).append(child.popen.pid)
        return found

    # --- seeding --------------------------------------------------------------------------
    def seed(self) -> SeededSet:
        """Store the top `size` tokens and the `top100` set as the metadata job would (module docstring)."""
        from shared.config import BinanceSettings, CoinGeckoSettings, Settings
        from shared.crawler import store
        from shared.crawler.domain.normalize_coingecko import top100_profiles
        from shared.upstream.binance import BinanceClient
        from shared.upstream.coingecko import MAX_PER_PAGE, CoinGeckoClient

        settings = Settings(database_url=self.infra.database_url)
        coingecko = CoinGeckoClient.from_settings(
            CoinGeckoSettings(base_url=f"{self.market_url}/coingecko", rate_limit_per_minute=10**6)
        )
        binance = BinanceClient.from_settings(
            BinanceSettings(base_url=f"{self.market_url}/binance", rate_limit_per_minute=10**6)
        )
        pages = math.ceil(min(self.universe_size(), self.config.size + UNIVERSE_HEADROOM) / MAX_PER_PAGE)
        markets: list[Any] = []
        for page in range(1, pages + 1):
            markets += coingecko.top_markets(limit=MAX_PER_PAGE, page=page)
        profiles, failures = top100_profiles(
            markets,
            coingecko.coins_list_with_platforms(),
            settings.stablecoin_symbols,
            coingecko.stablecoin_ids(),
            limit=self.config.size,
        )
        if failures:
            log.warning("seeding: %d coins left out, e.g. %s", len(failures), failures[0])
        conn = self.infra.connect()
        try:
            conn.run("BEGIN")
            keys = store.upsert_tokens(conn, profiles)
            store.set_membership(conn, "top100", [keys[p.key] for p in profiles], complete=True)
            store.run_maintenance(conn, settings.token_prices_retention_days, settings.job_logs_retention_days)
            conn.run("COMMIT")
            members = store.set_members(conn, "top100", self.config.size)
        finally:
            conn.close()
        return describe_set(members, binance.usdt_symbols(), settings)

    # --- observation ----------------------------------------------------------------------
    def market_stats(self) -> dict[str, Any]:
        return _get_json(f"{self.market_url}/_sim/stats")

    def reset_market_stats(self) -> None:
        request = urllib.request.Request(f"{self.market_url}/_sim/stats/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=5):
            pass

    def eventing_metrics(self) -> dict[str, Any]:
        """The plane's JSON counters (GET /status; /metrics in older versions), {} if unreadable."""
        for path in ("/status", "/metrics"):
            try:
                return _get_json(f"http://127.0.0.1:{self.eventing_port}{path}")
            except (OSError, ValueError):
                continue
        return {}

    def scheduler_tick_outcomes(self) -> dict[str, float]:
        """`crawler_scheduler_ticks_total` of the price schedule by outcome (emitted, skipped, ...)."""
        url = f"http://127.0.0.1:{self.function_ports['scheduler'][0]}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError:
            return {}
        outcomes: dict[str, float] = {}
        for line in text.splitlines():
            if line.startswith("crawler_scheduler_ticks_total{") and f'schedule="{PRICE_SCHEDULE}"' in line:
                labels, value = line.rsplit(" ", 1)
                outcome = labels.split('outcome="', 1)[1].split('"', 1)[0] if 'outcome="' in labels else "?"
                outcomes[outcome] = outcomes.get(outcome, 0.0) + float(value)
        return outcomes


def describe_set(members: list[Any], binance_bases: frozenset[str], settings: Any) -> SeededSet:
    """Count what a tick schedules and which upstream each token needs at the minimum.

    Mirrors the price pipeline's source order: Binance by symbol (best rank first), then
    DexScreener by the first contract on a chain it covers, then CoinGecko by id.
    """
    from shared.crawler.domain.chains import dexscreener_contracts  # the pipeline's own contract choice
    from shared.crawler.pipelines.scheduler import _schedulable_members  # the scheduler's own filter

    symbols = [m.symbol for m in _schedulable_members([(m, None) for m in members], settings.stablecoin_symbols)]
    by_symbol: dict[str, Any] = {}
    for token in members:  # rank order: tokens_by_symbol keeps the best-ranked namesake
        by_symbol.setdefault(token.symbol.upper(), token)
    seeded = SeededSet(members=len(members), symbols=len(symbols), jobs_per_tick=0, on_binance=0)
    for symbol in symbols:
        token = by_symbol[symbol]
        if symbol in binance_bases:
            seeded.on_binance += 1
        elif dex := dexscreener_contracts(token.chain, token.contract, token.contracts):
            chain = dex[0][0]
            seeded.dex_by_chain[chain] = seeded.dex_by_chain.get(chain, 0) + 1
        elif token.coingecko_id:
            seeded.coingecko_only += 1
        else:
            seeded.unpriceable += 1
    # Once every token was priced, the scheduler routes a tick by source (schedule.price_batches).
    routed, dex_size = settings.top100_price_routed_job_size, settings.top100_price_dex_job_size
    seeded.jobs_per_tick = (
        math.ceil(seeded.on_binance / routed)
        + math.ceil(seeded.coingecko_only / routed)
        + sum(math.ceil(n / dex_size) for n in seeded.dex_by_chain.values())
        + math.ceil(seeded.unpriceable / settings.top100_price_batch_size)
    )
    return seeded


def _price_cadence_manifests() -> Path:
    """A copy of infra/knative/base whose only PingSource is the 5-s top-100 price tick."""
    source = PROJECT_ROOT / "infra" / "knative" / "base"
    target = BENCH_STATE_DIR / "manifests"
    target.mkdir(parents=True, exist_ok=True)
    for path in source.glob("*.yaml"):
        documents = list(yaml.safe_load_all(path.read_text()))
        kept = [
            d
            for d in documents
            if not (
                isinstance(d, dict)
                and d.get("kind") == "PingSource"
                and d.get("metadata", {}).get("name") != PRICE_PING_SOURCE
            )
        ]
        (target / path.name).write_text(yaml.safe_dump_all(kept, sort_keys=False))
    return target


def _get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())
