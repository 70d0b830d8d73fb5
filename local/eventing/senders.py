"""Sending one CloudEvent to one destination, once: HTTP binary mode or a KafkaSink's topic.

A sender performs a single attempt and reports what happened as an `AttemptResult`
(status or network error, body, headers, latency); retries and dead-lettering are decided
by `local.eventing.delivery`. A KafkaSink answers like Knative's receiver would: 202 once
the broker acknowledged the record, 503 when producing failed (knative-eventing.md c).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import httpx
from confluent_kafka import KafkaError, KafkaException, Producer

from local.eventing.cloudevent import (
    STRUCTURED_CONTENT_TYPE,
    CloudEvent,
    binary_http_headers,
    kafka_binary_headers,
    structured_json,
)
from local.eventing.manifests import KafkaSinkManifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptResult:
    """Outcome of one send: `status` None means no response (connection error, timeout)."""

    status: int | None
    latency_seconds: float
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        """2xx (any status below 300) acknowledges the event."""
        return self.status is not None and self.status < 300


class EventSender(Protocol):
    """Something an event can be sent to once."""

    address: str

    async def send(self, event: CloudEvent, timeout_seconds: float) -> AttemptResult: ...


# A pooled keep-alive connection that broke under the request: the server closed it as it was
# reused (gunicorn ending an idle keep-alive connection just as the retry was sent on it).
BROKEN_CONNECTION_ERRORS = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class HttpEventSender:
    """POSTs events in CloudEvents binary HTTP mode (a.1), plus fixed extra headers.

    Given several replica URLs, each event goes to the replica with the fewest events in
    flight (the first such in rotation on a tie), as Knative's activator balances a
    service's pods: a tick's burst of jobs then spreads over the replicas' processes
    instead of queueing for one process's threads.

    A request whose reused connection breaks under it (`BROKEN_CONNECTION_ERRORS`) is sent
    again at once, within the same attempt, on a fresh connection (`fresh_client`, which
    keeps none alive): the sink never saw it fail, so it must not cost a retry — or, on the
    last one, dead-letter an event the function would have taken. A refused connection or
    a timeout is not resent: those are the sink's answer, left to the retry policy.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        url: str | Sequence[str],
        *,
        extra_headers: Sequence[tuple[str, str]] = (),
        fresh_client: httpx.AsyncClient | None = None,
    ):
        self._client = client
        self._fresh_client = fresh_client
        self._urls = (url,) if isinstance(url, str) else tuple(url)
        if not self._urls:
            raise ValueError("an HTTP sender needs at least one URL")
        self.address = ",".join(self._urls)
        self._extra_headers = tuple(extra_headers)
        self._in_flight = [0] * len(self._urls)  # only touched on the event loop's thread
        self._next = 0

    def _pick(self) -> int:
        count = len(self._urls)
        order = [(self._next + i) % count for i in range(count)]
        chosen = min(order, key=self._in_flight.__getitem__)
        self._next = (chosen + 1) % count
        return chosen

    async def send(self, event: CloudEvent, timeout_seconds: float) -> AttemptResult:
        headers = [*binary_http_headers(event), *self._extra_headers]
        replica = self._pick()
        self._in_flight[replica] += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_seconds):
                try:
                    response = await self._client.post(
                        self._urls[replica], headers=headers, content=event.data, timeout=timeout_seconds
                    )
                except BROKEN_CONNECTION_ERRORS as exc:
                    if self._fresh_client is None:
                        raise
                    log.info(
                        "connection to %s broke under event %s (%s: %s): sending it on a fresh connection",
                        self._urls[replica],
                        event.id,
                        type(exc).__name__,
                        exc,
                    )
                    response = await self._fresh_client.post(
                        self._urls[replica], headers=headers, content=event.data, timeout=timeout_seconds
                    )
        except (httpx.HTTPError, TimeoutError, OSError) as exc:
            return AttemptResult(
                status=None,
                latency_seconds=time.monotonic() - started,
                error=f"{type(exc).__name__}: {exc}".rstrip(": "),
            )
        finally:
            self._in_flight[replica] -= 1
        return AttemptResult(
            status=response.status_code,
            latency_seconds=time.monotonic() - started,
            body=response.content,
            headers=tuple(response.headers.multi_items()),
        )


class KafkaProducerBridge:
    """One idempotent, acks=all producer shared by every KafkaSink, awaitable from asyncio."""

    def __init__(self, bootstrap_servers: str, *, message_timeout_ms: int = 30_000):
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "client.id": "local-eventing-kafkasink",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": message_timeout_ms,
                "reconnect.backoff.max.ms": 2000,
                "logger": logging.getLogger("local.eventing.librdkafka"),
            }
        )
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve_callbacks, name="kafkasink-producer", daemon=True)
        self._thread.start()

    def _serve_callbacks(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.5)

    async def produce(
        self, topic: str, *, key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes]]
    ) -> None:
        """Produce one record and wait for the broker's acknowledgement; raise KafkaException."""
        loop = asyncio.get_running_loop()
        acknowledged: asyncio.Future[None] = loop.create_future()

        def resolve(error: KafkaError | None) -> None:
            if acknowledged.done():
                return
            if error is None:
                acknowledged.set_result(None)
            else:
                acknowledged.set_exception(KafkaException(error))

        def on_delivery(error: KafkaError | None, _message: object) -> None:
            try:
                loop.call_soon_threadsafe(resolve, error)
            except RuntimeError:  # loop closed during shutdown
                pass

        # (a list of its own: produce() wants a list, typed as holding any header value it accepts)
        self._producer.produce(topic, value=value, key=key, headers=list(headers), on_delivery=on_delivery)
        await acknowledged

    def close(self, timeout_seconds: float = 5.0) -> None:
        """Flush what is queued (bounded) and stop the callback thread."""
        try:
            self._producer.flush(timeout_seconds)
        finally:
            self._closed.set()
            self._thread.join(timeout=2)


class KafkaSinkSender:
    """Emulates a KafkaSink: the event becomes a record on `spec.topic` (c)."""

    def __init__(self, bridge: KafkaProducerBridge, sink: KafkaSinkManifest):
        self._bridge = bridge
        self._sink = sink
        self.address = sink.address

    async def send(self, event: CloudEvent, timeout_seconds: float) -> AttemptResult:
        key = event.get("partitionkey")  # PartitionKeyExtensionInterceptor: partitionkey → record key
        if self._sink.content_mode == "structured":
            headers = [("content-type", STRUCTURED_CONTENT_TYPE.encode())]
            value: bytes | None = structured_json(event)
        else:
            headers = kafka_binary_headers(event)
            value = event.data
        started = time.monotonic()
        try:
            async with asyncio.timeout(timeout_seconds):
                await self._bridge.produce(
                    self._sink.topic, key=key.encode("utf-8") if key else None, value=value, headers=headers
                )
        except (KafkaException, BufferError, TimeoutError) as exc:
            reason = f"producing to {self._sink.topic} failed: {type(exc).__name__}: {exc}"
            return AttemptResult(
                status=503, latency_seconds=time.monotonic() - started, body=reason.encode(), error=reason
            )
        return AttemptResult(status=202, latency_seconds=time.monotonic() - started)
