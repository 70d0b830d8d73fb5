"""`make up` (`python -m local.stack`): the whole system on this machine, in the foreground.

1. Kafka and PostgreSQL: those answering at KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL are used,
   otherwise the embedded ones are started (`local.services`).
2. Database migrations, then the project's topics.
3. The child processes of `processes()`, stage by stage: the simulated market and every
   function under functions-framework, then — once each function answers its readiness
   probe — the local eventing plane. Their output is printed with a name prefix (colored
   on a terminal) and appended to .local/logs/<name>.log. A child that dies is restarted
   with backoff, so the rest keeps running.

Exchange APIs default to the simulated market; an <API>_BASE_URL set in the environment
(e.g. BINANCE_BASE_URL=https://api.binance.com) is kept, which makes that upstream live.
Ctrl-C or SIGTERM stops everything in reverse order: the eventing plane, the functions and
the market, then the Kafka/PostgreSQL this run started (a server it found running is left
alone).
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from local import services
from local.services import LOCAL_DIR, PROJECT_ROOT
from shared.observability.logging import color_wanted, console_wanted

log = logging.getLogger("local.stack")


# Replica i (from 0) of a function listens on its port + REPLICA_PORT_STEP * i.
REPLICA_PORT_STEP = 100


@dataclass(frozen=True)
class Function:
    """A function of `functions/<name>/main.py`, served on $<NAME>_FUNCTION_PORT.

    $<NAME>_REPLICAS (default 1) runs that many processes of it, like pods on a cluster;
    the eventing plane balances events over them (`<NAME>_FUNCTION_URL` lists them all).
    """

    name: str
    default_port: int

    @property
    def port(self) -> int:
        return int(os.environ.get(f"{self.name.upper()}_FUNCTION_PORT") or self.default_port)

    @property
    def replicas(self) -> int:
        return max(1, int(os.environ.get(f"{self.name.upper()}_REPLICAS") or 1))

    def replica_ports(self) -> list[int]:
        """The port of each replica, the first being `port`."""
        return [self.port + REPLICA_PORT_STEP * i for i in range(self.replicas)]

    @property
    def urls(self) -> str:
        """Every replica's URL, comma-separated (what `<NAME>_FUNCTION_URL` carries)."""
        return replica_urls(self.replica_ports())


# Set for every function process, as the cluster's ConfigMap does: glibc otherwise gives each
# request thread its own heap arena, and the price function's peak RSS grew to 163 MB under
# rate-limit pressure (125 MB with two arenas; docs/performance.md).
FUNCTION_PROCESS_ENV: Mapping[str, str] = {"MALLOC_ARENA_MAX": "2"}


def replica_name(function: str, index: int) -> str:
    """`price`, `price-2`, `price-3`, ...: the process name of replica `index` (from 0)."""
    return function if index == 0 else f"{function}-{index + 1}"


def replica_urls(ports: Iterable[int]) -> str:
    """The local URLs of a function's replicas, comma-separated, first replica first."""
    return ",".join(f"http://127.0.0.1:{port}" for port in ports)


def functions_framework_argv(function: str, port: int) -> tuple[str, ...]:
    """The command that serves `functions/<function>/main.py` under functions-framework on 127.0.0.1:`port`."""
    source = PROJECT_ROOT / "functions" / function / "main.py"
    return (sys.executable, "-m", "functions_framework", "--source", str(source), "--target", function,
            "--signature-type", "http", "--host", "127.0.0.1", "--port", str(port))  # fmt: skip


# Functions served as ASGI applications (their `asgi` object) under uvicorn: functions-framework
# cannot serve WebSockets (docs/trades.md, "The WebSocket feed").
ASGI_FUNCTIONS: frozenset[str] = frozenset({"trade_feed"})


def asgi_argv(function: str, port: int) -> tuple[str, ...]:
    """The command that serves `functions/<function>/main.py`'s `asgi` under uvicorn on 127.0.0.1:`port`."""
    return (sys.executable, "-m", "uvicorn", "--app-dir", str(PROJECT_ROOT / "functions" / function), "main:asgi",
            "--ws", "websockets-sansio", "--host", "127.0.0.1", "--port", str(port),
            # uvicorn's own lines quote the request target, query included: a token a client put
            # there (refused, 400) would be logged. The function logs its handshakes itself.
            "--no-access-log", "--log-level", "warning")  # fmt: skip


def function_argv(function: str, port: int) -> tuple[str, ...]:
    """The command serving `function` on `port`: uvicorn for an ASGI function, else functions-framework."""
    return asgi_argv(function, port) if function in ASGI_FUNCTIONS else functions_framework_argv(function, port)


def function_process(function: str, index: int, port: int) -> Process:
    """Replica `index` of `functions/<function>/main.py` (functions-framework, or uvicorn) on `port`."""
    source = PROJECT_ROOT / "functions" / function / "main.py"
    return Process(
        replica_name(function, index),
        function_argv(function, port),
        requires=source,
        ready_url=f"http://127.0.0.1:{port}/health/readiness",
        env={"K_SERVICE": function, **FUNCTION_PROCESS_ENV},  # K_SERVICE as Knative sets it: names logs and metrics
    )


# Add a function here and `make up` runs it (and hands its URL to every other process).
FUNCTIONS: tuple[Function, ...] = (
    Function("price", 8081),
    Function("metadata", 8082),
    Function("audit", 8083),
    Function("scheduler", 8084),
    Function("quotes", 8085),
    Function("deadletter", 8086),
    # Trade ingestion (shared/trades): the API, the normaliser, the enricher and the analyser.
    Function("trades", 8087),
    Function("trade_normalizer", 8088),
    Function("trade_enricher", 8093),
    Function("trade_analyser", 8094),
    # Exchange sync: each linked Binance/Bybit account's new fills to raw-trades (trade-sync-tick).
    Function("trade_sync", 8096),
    Function("trade_feed", 8097),  # WS /ws/trades/{user_id}, under uvicorn (ASGI_FUNCTIONS)
    Function("stats", 8092),
    # Stock analytics (shared/stocks): Finnhub quotes every 6 s, dbt gold every minute.
    Function("stocks", 8095),
)

# Upstream API -> path prefix under which the simulated market serves it.
SIMULATED_UPSTREAMS: Mapping[str, str] = {
    "BINANCE": "binance",
    "COINGECKO": "coingecko",
    "DEXSCREENER": "dexscreener",
    "GECKOTERMINAL": "geckoterminal",
    "GOPLUS": "goplus",
    "FINNHUB": "finnhub",
    "BYBIT": "bybit",
    "LIFI": "lifi",
    "RELAY": "relay",
    "ONEINCH": "oneinch",
    "DEFILLAMA": "defillama",
}
MARKET_DEFAULT_PORT = 8090


def simulated_stats_chains(market: str) -> str:
    """STATS_CHAINS for the simulated market's JSON-RPC nodes (local/market/apis/evm_rpc.py)."""
    import json

    from shared.stats.settings import StatsSettings

    chains = []
    for chain in StatsSettings().chains:
        nodes = (chain.name, f"{chain.name}-2", f"{chain.name}-lagging", f"{chain.name}-wrongchain")
        urls = [f"{market}/rpc/{node}" for node in nodes]
        chains.append(chain.model_copy(update={"rpc_urls": tuple(urls)}).model_dump(mode="json"))
    return json.dumps(chains)


# S3-compatible object storage for the bronze archive: a local moto server (no AWS involved).
OBJECT_STORE_DEFAULT_PORT = 8091
READY_TIMEOUT = 60.0  # per stage: how long children get to answer their readiness probe
STOP_TIMEOUT = 10.0  # per stage: then SIGKILL


@dataclass(frozen=True)
class Process:
    """One supervised child process of the stack."""

    name: str
    argv: tuple[str, ...]
    requires: Path  # the file that must exist to run it (a part still being written is skipped)
    stage: int = 0  # started once every process of the earlier stages is ready
    ready_url: str | None = None  # GET answering 2xx = ready
    ready_port: int | None = None  # or: accepting TCP connections = ready
    env: Mapping[str, str] = field(default_factory=dict)


def market_port() -> int:
    return int(os.environ.get("MARKET_PORT") or MARKET_DEFAULT_PORT)


def object_store_port() -> int:
    return int(os.environ.get("OBJECT_STORE_PORT") or OBJECT_STORE_DEFAULT_PORT)


def _module_file(module: str) -> Path:
    """The file `python -m module` runs: <module path>.py or <module path>/__main__.py."""
    path = PROJECT_ROOT.joinpath(*module.split("."))
    return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")


def processes() -> list[Process]:
    """The child processes of `make up`, in start order."""
    python = sys.executable
    children = [
        Process(
            "market",
            (python, "-m", "local.market", "--port", str(market_port())),
            requires=_module_file("local.market"),
            ready_port=market_port(),
        ),
        Process(
            "s3",
            (python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(object_store_port())),
            requires=_module_file("local.market"),  # moto comes with the dev install, like the market
            ready_port=object_store_port(),
        ),
    ]
    for function in FUNCTIONS:
        children += [function_process(function.name, i, port) for i, port in enumerate(function.replica_ports())]
    children.append(
        Process("eventing", (python, "-m", "local.eventing"), requires=_module_file("local.eventing"), stage=1)
    )
    return children


def child_environment(kafka_bootstrap: str, database_url: str) -> dict[str, str]:
    """The environment every child gets: infrastructure addresses, function URLs, upstreams."""
    env = dict(os.environ)
    env.update(
        KAFKA_BOOTSTRAP_SERVERS=kafka_bootstrap,
        DATABASE_URL=database_url,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    )
    for function in FUNCTIONS:
        env[f"{function.name.upper()}_FUNCTION_URL"] = function.urls
    market = f"http://127.0.0.1:{market_port()}"
    env["MARKET_URL"] = market
    for api, prefix in SIMULATED_UPSTREAMS.items():
        env.setdefault(f"{api}_BASE_URL", f"{market}/{prefix}")
    # The trades API's bearer-token key: kept in .local/ (never committed), made once per checkout;
    # `python -m shared.trades token <user>` issues a token signed with it.
    env.setdefault("TRADES_TOKEN_KEY", local_trades_token_key())
    # Exchange sync: the demo user's Binance and Bybit keys, given to the simulated exchanges and
    # to trade_sync alike (demo values made once per checkout in .local/, never committed).
    demo = local_exchange_demo_keys()
    env.setdefault("MARKET_EXCHANGE_ACCOUNTS", demo_market_accounts(demo))
    env.setdefault("TRADES_EXCHANGE_CREDENTIALS", demo_credentials(demo))
    env.setdefault("MARKET_FILLS_PER_MINUTE", "60")
    # Chain stats: the simulated nodes (a lagging replica and a wrong-chain node beside each honest one).
    env.setdefault("STATS_CHAINS", simulated_stats_chains(market))
    # 1inch wants a key even for a quote; the simulated one takes any Bearer key.
    if env["ONEINCH_BASE_URL"].startswith(market):
        env.setdefault("ONEINCH_API_KEY", "local-simulated-key")
    # Bronze archive of every raw upstream response, into the local moto S3 server.
    env.setdefault("ARCHIVE_ENABLED", "true")
    env.setdefault("S3_ENDPOINT_URL", f"http://127.0.0.1:{object_store_port()}")
    env.setdefault("AWS_ACCESS_KEY_ID", "local")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    # The children's output reaches the terminal through a pipe, so they cannot see it is one:
    # tell them (readable lines, coloured as the stack's own prefixes are), unless LOG_FORMAT is set.
    if not env.get("LOG_FORMAT") or env["LOG_FORMAT"].strip().lower() == "auto":
        terminal = console_wanted("auto")
        env["LOG_FORMAT"] = "console" if terminal else "json"
        if terminal and color_wanted(sys.stdout, os.environ):
            env.setdefault("FORCE_COLOR", "1")
    return env


def local_trades_token_key(directory: Path = LOCAL_DIR) -> str:
    """The local runs' HMAC key of trade tokens: .local/trades-token-key, created (0600) on first use."""
    import secrets

    path = directory / "trades-token-key"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


DEMO_TRADER = "demo"
DEMO_SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")


def local_exchange_demo_keys(directory: Path = LOCAL_DIR) -> dict[str, dict[str, str]]:
    """The demo user's simulated Binance and Bybit keys: .local/exchange-demo-keys.json (0600), made once."""
    import json
    import secrets

    path = directory / "exchange-demo-keys.json"
    if not path.exists():
        directory.mkdir(parents=True, exist_ok=True)
        keys = {
            exchange: {"api_key": secrets.token_hex(16), "api_secret": secrets.token_hex(32)}
            for exchange in ("binance", "bybit")
        }
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(keys, out)
    loaded: dict[str, dict[str, str]] = json.loads(path.read_text())
    return loaded


def demo_market_accounts(keys: Mapping[str, Mapping[str, str]]) -> str:
    """MARKET_EXCHANGE_ACCOUNTS: the demo user's accounts on the simulated exchanges."""
    import json

    return json.dumps([{"exchange": name, **pair, "symbols": list(DEMO_SYMBOLS)} for name, pair in keys.items()])


def demo_credentials(keys: Mapping[str, Mapping[str, str]]) -> str:
    """TRADES_EXCHANGE_CREDENTIALS: credential name -> key pair, as the Kubernetes Secret holds it."""
    import json

    return json.dumps({f"demo-{name}": dict(pair) for name, pair in keys.items()})


def link_demo_accounts(database_url: str) -> None:
    """The demo user's linked accounts (trade_accounts), naming the demo credentials."""
    from shared.db.connection import ConnectionPool
    from shared.trades.sync_store import link_account

    pool = ConnectionPool(database_url, size=1)
    try:
        with pool.connection() as conn:
            for exchange in ("binance", "bybit"):
                link_account(
                    conn,
                    account_id=f"{DEMO_TRADER}:{exchange}:main",
                    user_id=DEMO_TRADER,
                    exchange=exchange,
                    label="main",
                    credential_name=f"demo-{exchange}",
                    symbols=DEMO_SYMBOLS if exchange == "binance" else (),
                )
    finally:
        pool.close()


# --------------------------------------------------------------------------------------------
# Output


class Console:
    """Serialised, name-prefixed output lines; colored when printing to a terminal."""

    COLORS = ("36", "35", "32", "33", "34", "96", "95", "92", "93", "94")

    def __init__(self, stream: TextIO = sys.stdout) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._color = stream.isatty() and not os.environ.get("NO_COLOR")
        self._assigned: dict[str, str] = {}
        self.width = 9

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self._color else text

    def line(self, name: str, text: str, *, alarm: bool = False) -> None:
        code = self._assigned.setdefault(name, self.COLORS[len(self._assigned) % len(self.COLORS)])
        prefix = self._paint(f"{name:<{self.width}}|", code)
        if alarm:
            text = self._paint(text, "1;31")
        with self._lock:
            self._stream.write(f"{prefix} {text}\n")
            self._stream.flush()


class _ConsoleHandler(logging.Handler):
    """The stack's own log records, printed as lines of `stack`."""

    def __init__(self, console: Console):
        super().__init__()
        self._console = console
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        for text in self.format(record).splitlines():  # a traceback is several lines
            self._console.line("stack", text, alarm=record.levelno >= logging.WARNING)


# --------------------------------------------------------------------------------------------
# Supervision


class Child:
    """A running (or waiting to restart) child process and its output pump."""

    RESTART_BACKOFF: tuple[float, ...] = (1, 2, 5, 10, 30)
    STABLE_AFTER = 60.0  # a child that ran this long is healthy again: backoff starts over

    def __init__(self, spec: Process, env: Mapping[str, str], console: Console, log_dir: Path = LOCAL_DIR / "logs"):
        self.spec = spec
        self._env = {**env, **spec.env}
        self._console = console
        self._log_path = log_dir / f"{spec.name}.log"
        self.popen: subprocess.Popen | None = None
        self.started_at = 0.0
        self.failures = 0
        self.restart_at: float | None = None
        self.ready = False

    def start(self) -> None:
        self._log_path.parent.mkdir(parents=True, exist_ok=True)
        argv = list(self.spec.argv)
        if shutil.which("setpriv"):  # the child dies with the stack even if it is SIGKILLed
            argv = ["setpriv", "--pdeathsig", "TERM", "--", *argv]
        self.popen = subprocess.Popen(
            argv, env=self._env, cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only the stack, which stops children in order
        )  # fmt: skip
        self.started_at = time.monotonic()
        self.restart_at = None
        threading.Thread(target=self._pump, args=(self.popen, self._log_path), daemon=True).start()

    def _pump(self, popen: subprocess.Popen, log_path: Path) -> None:
        if popen.stdout is None:  # started without a pipe: nothing to copy
            return
        with open(log_path, "ab") as log_file:
            for raw in iter(popen.stdout.readline, b""):
                log_file.write(raw)
                log_file.flush()
                self._console.line(self.spec.name, raw.decode(errors="replace").rstrip("\n"))

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        """Notice an exit (say so loudly, schedule a restart); restart when it is due."""
        now = time.monotonic()
        if self.restart_at is not None:
            if now >= self.restart_at:
                log.warning("restarting %s (restart #%d)", self.spec.name, self.failures)
                self.start()
            return
        if self.popen is None or self.popen.poll() is None:
            return
        lifetime = now - self.started_at
        if lifetime >= self.STABLE_AFTER:
            self.failures = 0
        delay = self.RESTART_BACKOFF[min(self.failures, len(self.RESTART_BACKOFF) - 1)]
        self.failures += 1
        self.ready = False
        self.restart_at = now + delay
        log.error(
            "%s EXITED with code %s after %.1f s — restarting in %d s",
            self.spec.name,
            self.popen.returncode,
            lifetime,
            delay,
        )

    def probe(self) -> bool:
        """True once the child answers its readiness probe (or has none and is running)."""
        if not self.ready and self.running():
            if self.spec.ready_url:
                self.ready = _http_ok(self.spec.ready_url)
            elif self.spec.ready_port:
                self.ready = services.port_open("127.0.0.1", self.spec.ready_port)
            else:
                self.ready = True
        return self.ready

    def signal(self, signum: int) -> None:
        if self.running() and self.popen is not None:
            try:
                os.killpg(self.popen.pid, signum)  # its own session: gunicorn workers included
            except ProcessLookupError:
                pass


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


def stop_children(children: Iterable[Child], timeout: float = STOP_TIMEOUT) -> None:
    """Stop the children stage by stage, last stage first: SIGTERM, then SIGKILL after `timeout`."""
    by_stage: dict[int, list[Child]] = {}
    for child in children:
        child.restart_at = None
        by_stage.setdefault(child.spec.stage, []).append(child)
    for stage in sorted(by_stage, reverse=True):
        group = [c for c in by_stage[stage] if c.running()]
        if not group:
            continue
        log.info("stopping %s", ", ".join(c.spec.name for c in group))
        for child in group:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while any(c.running() for c in group) and time.monotonic() < deadline:
            time.sleep(0.1)
        for child in group:
            if child.running():
                log.warning("%s did not stop within %.0f s: killing it", child.spec.name, timeout)
                child.signal(signal.SIGKILL)
                if child.popen is not None:
                    child.popen.wait(5)


# --------------------------------------------------------------------------------------------
# The stack


class Stack:
    """Brings the system up, supervises it, and tears down what it started."""

    def __init__(self, console: Console, specs: list[Process] | None = None, log_dir: Path = LOCAL_DIR / "logs"):
        self.console = console
        self.specs = processes() if specs is None else specs
        self.log_dir = log_dir
        self.embedded: list[services.EmbeddedService] = []
        self.children: list[Child] = []
        console.width = max([len("stack"), *(len(s.name) for s in self.specs)]) + 1

    def start_infrastructure(self) -> tuple[str, str]:
        """Kafka, PostgreSQL, migrations, topics; returns (bootstrap servers, database URL)."""
        from shared.config import Settings
        from shared.db.migrations import apply_migrations

        settings = Settings()
        postgres = services.ensure_postgres(settings.database_url)
        if postgres:
            self.embedded.append(postgres)
        describe = "embedded, started now" if postgres and postgres.started else "already running"
        log.info("PostgreSQL: %s (%s)", _without_password(settings.database_url), describe)

        kafka = services.ensure_kafka(settings.kafka_bootstrap_servers)
        if kafka:
            self.embedded.append(kafka)
        bootstrap = kafka.address if kafka else settings.kafka_bootstrap_servers
        version = services.kafka_version() if kafka else None
        describe = f"embedded Kafka {version}, started now" if kafka and kafka.started else "already running"
        log.info("Kafka: %s (%s)", bootstrap, describe)

        applied = apply_migrations(settings.database_url)
        log.info("migrations: %s", ", ".join(applied) if applied else "up to date")
        link_demo_accounts(settings.database_url)
        created = services.create_project_topics(bootstrap)
        log.info("topics: %s", f"created {', '.join(created)}" if created else "all present")
        return bootstrap, settings.database_url

    def start_children(self, env: Mapping[str, str]) -> None:
        """Start the child processes stage by stage, waiting for readiness between stages."""
        for stage in sorted({s.stage for s in self.specs}):
            started = []
            for spec in (s for s in self.specs if s.stage == stage):
                if not spec.requires.exists():
                    log.warning(
                        "%s: skipped, %s does not exist (not written yet?)",
                        spec.name, os.path.relpath(spec.requires, PROJECT_ROOT),
                    )  # fmt: skip
                    continue
                child = Child(spec, env, self.console, self.log_dir)
                child.start()
                self.children.append(child)
                started.append(child)
            self._wait_ready(started)

    def _wait_ready(self, children: list[Child]) -> None:
        began = time.monotonic()
        pending = [c for c in children if c.spec.ready_url or c.spec.ready_port]
        while pending and time.monotonic() - began < READY_TIMEOUT:
            self.supervise()
            for child in [c for c in pending if c.probe()]:
                log.info("%s ready after %.1f s", child.spec.name, time.monotonic() - began)
                pending.remove(child)
            time.sleep(0.25)
        for child in pending:
            probe = child.spec.ready_url or f"port {child.spec.ready_port}"
            log.warning(
                "%s is not ready after %.0f s (%s): continuing without waiting", child.spec.name, READY_TIMEOUT, probe
            )

    def supervise(self) -> None:
        for child in self.children:
            child.check()

    def run_forever(self) -> None:
        log.info("up — Ctrl-C stops everything")
        last_service_check = 0.0
        while True:
            self.supervise()
            if time.monotonic() - last_service_check > 5:
                last_service_check = time.monotonic()
                for service in list(self.embedded):
                    if not services.process_alive(service.pid):
                        log.error("embedded %s (pid %d) is GONE — see %s", service.name, service.pid, service.log_path)
                        self.embedded.remove(service)
            time.sleep(0.5)

    def shutdown(self) -> None:
        stop_children(self.children)
        for service in reversed(self.embedded):
            if service.stop():
                log.info("stopped embedded %s", service.name)
            else:
                log.info("left embedded %s running for its other users", service.name)
        self.embedded.clear()


def _report_upstreams(env: Mapping[str, str]) -> None:
    live = {
        api.lower(): env[f"{api}_BASE_URL"]
        for api, prefix in SIMULATED_UPSTREAMS.items()
        if env[f"{api}_BASE_URL"] != f"{env['MARKET_URL']}/{prefix}"
    }
    simulated = sorted({a.lower() for a in SIMULATED_UPSTREAMS} - set(live))
    if simulated:
        log.info("simulated market at %s serves: %s", env["MARKET_URL"], ", ".join(simulated))
    for api, url in live.items():
        log.info("%s is LIVE: %s", api, url)


def _without_password(url: str) -> str:
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main() -> int:
    console = Console()
    logging.basicConfig(level=logging.INFO, handlers=[_ConsoleHandler(console)])
    logging.getLogger("local.services.librdkafka").setLevel(logging.ERROR)
    signal.signal(signal.SIGTERM, _raise_interrupt)  # SIGTERM stops as cleanly as Ctrl-C
    stack = Stack(console)
    status = 0
    try:
        bootstrap, database_url = stack.start_infrastructure()
        env = child_environment(bootstrap, database_url)
        _report_upstreams(env)
        stack.start_children(env)
        stack.run_forever()
    except KeyboardInterrupt:
        log.info("stopping (Ctrl-C)")
    except services.ServiceError as exc:
        log.error("cannot start: %s", exc)
        status = 1
    except Exception:
        log.exception("the stack failed")
        status = 1
    finally:
        # A second Ctrl-C must not leave half of the system running.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.shutdown()
        log.info("stopped")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
