"""The local eventing plane: every KafkaSource and PingSource of a topology in one process.

Threads: one asyncio loop thread (all HTTP/Kafka sends, backoff sleeps, PingSource timers),
one thread per KafkaSource consumer (librdkafka calls), one for the KafkaSink producer's
callbacks, and the status server. See `local.eventing.kafka_source` for why.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx

from local.eventing.config import EventingSettings
from local.eventing.destinations import (
    EventingTopology,
    HttpEndpoint,
    KafkaSinkEndpoint,
    ResolvedDestination,
)
from local.eventing.kafka_source import KafkaSourceRunner
from local.eventing.ping_source import PingSourceRunner
from local.eventing.senders import (
    EventSender,
    HttpEventSender,
    KafkaProducerBridge,
    KafkaSinkSender,
)
from local.eventing.server import StatusServer
from local.eventing.telemetry import EventingMetrics, watch_eventing

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class EventingPlane:
    """Runs a resolved topology; `start()` returns at once, `stop()` drains and commits."""

    def __init__(
        self,
        topology: EventingTopology,
        settings: EventingSettings,
        *,
        metrics: EventingMetrics | None = None,
        serve_status: bool = True,
    ):
        self.topology = topology
        self.settings = settings
        self.metrics = metrics or EventingMetrics()
        if serve_status:  # the process's own plane: its counters become Prometheus metrics on /metrics
            watch_eventing(self.metrics.snapshot)
        self._serve_status = serve_status
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="eventing-loop", daemon=True)
        self._http: httpx.AsyncClient | None = None
        self._fresh_http: httpx.AsyncClient | None = None  # no keep-alive: resends on a fresh connection
        self._producer: KafkaProducerBridge | None = None
        self.kafka_sources: list[KafkaSourceRunner] = []
        self.ping_sources: list[PingSourceRunner] = []
        self._ping_tasks: list[asyncio.Task] = []
        self._server: StatusServer | None = None
        self._started = False

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start every source and the status endpoint."""
        if self._started:
            raise RuntimeError("the plane is already started")
        self._started = True
        self._loop_thread.start()
        self._http = self._call(self._new_http_client())
        self._fresh_http = self._call(self._new_http_client(keep_alive=False))
        if any(isinstance(d, KafkaSinkEndpoint) for d in self._destinations()):
            self._producer = KafkaProducerBridge(self.settings.kafka_bootstrap_servers)

        for kafka_source in self.topology.kafka_sources:
            namespace = kafka_source.manifest.namespace
            kafka_runner = KafkaSourceRunner(
                kafka_source,
                sink=self._sender(kafka_source.sink, kafka_source_namespace=namespace),
                dead_letter_sink=(
                    self._sender(kafka_source.dead_letter_sink, kafka_source_namespace=namespace)
                    if kafka_source.dead_letter_sink is not None
                    else None
                ),
                loop=self._loop,
                settings=self.settings,
                metrics=self.metrics,
            )
            self.kafka_sources.append(kafka_runner)
            kafka_runner.start()
        for ping_source in self.topology.ping_sources:
            ping_runner = PingSourceRunner(
                ping_source, sender=self._sender(ping_source.sink), settings=self.settings, metrics=self.metrics
            )
            self.ping_sources.append(ping_runner)
            self._ping_tasks.append(self._call(self._spawn(ping_runner.run())))
        if self._serve_status:
            self._server = StatusServer(
                self.settings.host, self.settings.port, health=self.health, metrics=self.metrics.snapshot
            )
            self._server.start()
        log.info(
            "local eventing plane started: %d KafkaSource(s), %d PingSource(s), status on %s:%s",
            len(self.kafka_sources),
            len(self.ping_sources),
            self.settings.host,
            self.status_port,
        )

    def stop(self) -> None:
        """Stop ticking and fetching, let in-flight events finish (bounded), commit, release."""
        if not self._started:
            return
        for task in self._ping_tasks:
            self._loop.call_soon_threadsafe(task.cancel)
        stoppers = [
            threading.Thread(target=r.stop, args=(self.settings.shutdown_grace_seconds,)) for r in self.kafka_sources
        ]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        try:
            self._call(self._shutdown_loop_tasks(), timeout=10)
        except Exception:
            log.exception("error while closing the event loop's tasks")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(timeout=10)
        if self._producer is not None:
            self._producer.close()
        if self._server is not None:
            self._server.stop()
        self._started = False
        log.info("local eventing plane stopped")

    def __enter__(self) -> EventingPlane:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- status ------------------------------------------------------------------------------

    @property
    def status_port(self) -> int | None:
        """Port of the status endpoint, once started."""
        return self._server.port if self._server is not None else None

    def health(self) -> dict[str, Any]:
        """`ok` while the loop and every consumer run, reach a broker and are not restarting; else
        `degraded`, with each source's problems."""
        sources: dict[str, Any] = {}
        healthy = self._loop_thread.is_alive()
        for kafka_runner in self.kafka_sources:
            running = kafka_runner.is_running()
            problems = kafka_runner.problems()
            healthy &= running and not problems
            sources[kafka_runner.key] = {
                "kind": "KafkaSource",
                "running": running,
                "assigned": sorted(f"{topic}[{partition}]" for topic, partition in kafka_runner.assignment()),
                "problems": problems,
            }
        for ping_runner, task in zip(self.ping_sources, self._ping_tasks):
            running = not task.done()
            healthy &= running
            sources[ping_runner.key] = {"kind": "PingSource", "running": running, "in_flight": ping_runner.in_flight}
        return {"status": "ok" if healthy else "degraded", "sources": sources}

    # --- helpers -----------------------------------------------------------------------------

    def _destinations(self) -> list[ResolvedDestination]:
        found: list[ResolvedDestination] = []
        for source in self.topology.kafka_sources:
            found.append(source.sink)
            if source.dead_letter_sink is not None:
                found.append(source.dead_letter_sink)
        found.extend(source.sink for source in self.topology.ping_sources)
        return found

    def _sender(self, destination: ResolvedDestination, *, kafka_source_namespace: str | None = None) -> EventSender:
        if isinstance(destination, HttpEndpoint):
            assert self._http is not None  # made by start() before any sender
            extra = [("Prefer", "reply"), ("Kn-Namespace", kafka_source_namespace)] if kafka_source_namespace else []
            return HttpEventSender(self._http, destination.urls, extra_headers=extra, fresh_client=self._fresh_http)
        assert self._producer is not None
        return KafkaSinkSender(self._producer, destination.sink)

    def _call(self, coroutine: Coroutine[Any, Any, _T], timeout: float | None = 30) -> _T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    @staticmethod
    async def _new_http_client(*, keep_alive: bool = True) -> httpx.AsyncClient:
        # trust_env=False: local sinks must not be routed through a proxy from the environment.
        return httpx.AsyncClient(
            trust_env=False,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50 if keep_alive else 0),
        )

    @staticmethod
    async def _spawn(coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(coroutine)

    async def _shutdown_loop_tasks(self) -> None:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()
        if self._fresh_http is not None:
            await self._fresh_http.aclose()
