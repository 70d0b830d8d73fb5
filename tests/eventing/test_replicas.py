"""A Service with several replicas: sinks resolve to every replica, and each event goes to
the least busy one. Real HTTP servers stand in for the replicas' processes."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from local.eventing.cloudevent import CloudEvent
from local.eventing.destinations import HttpEndpoint, resolve_topology
from local.eventing.manifests import load_manifests
from local.eventing.senders import HttpEventSender

MANIFESTS = Path(__file__).parent / "manifests"


class _Replica:
    """An HTTP server that answers 200 after `hold` seconds and counts what it received."""

    def __init__(self, hold: float):
        self.received = 0
        replica = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                replica.received += 1
                time.sleep(hold)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def replicas():
    started = [_Replica(hold=0.3), _Replica(hold=0.3)]
    yield started
    for replica in started:
        replica.close()


def _event(n: int) -> CloudEvent:
    return CloudEvent(
        {"specversion": "1.0", "id": f"job-{n}", "type": "t", "source": "/s", "datacontenttype": "application/json"},
        b"{}",
    )


def test_a_comma_separated_function_url_names_the_replicas():
    env = {"PRICE_FUNCTION_URL": "http://127.0.0.1:9001, http://127.0.0.1:9002"}
    topology = resolve_topology(
        load_manifests(MANIFESTS),
        env,
        {"METADATA_FUNCTION_URL": "http://m", "AUDIT_FUNCTION_URL": "http://a", "SCHEDULER_FUNCTION_URL": "http://s"},
    )
    price = {s.manifest.name: s for s in topology.kafka_sources}["price-request-source"]
    assert price.sink == HttpEndpoint("http://127.0.0.1:9001", ("http://127.0.0.1:9001", "http://127.0.0.1:9002"))
    assert price.sink.address == "http://127.0.0.1:9001,http://127.0.0.1:9002"
    assert HttpEndpoint("http://x").urls == ("http://x",)


def test_a_burst_spreads_over_the_replicas_by_events_in_flight(replicas):
    async def burst() -> list[int | None]:
        async with httpx.AsyncClient() as client:
            sender = HttpEventSender(client, [r.url for r in replicas])
            results = await asyncio.gather(*(sender.send(_event(n), 5.0) for n in range(6)))
            return [r.status for r in results]

    assert asyncio.run(burst()) == [200] * 6
    assert Counter(r.received for r in replicas) == Counter({3: 2})


def test_the_idle_replica_gets_the_next_event():
    """One replica still busy with a long event: the next two go to the other, one at a time."""
    slow, quick = _Replica(hold=1.0), _Replica(hold=0.05)
    replicas = [slow, quick]

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            sender = HttpEventSender(client, [r.url for r in replicas])
            busy = asyncio.create_task(sender.send(_event(0), 5.0))
            await asyncio.sleep(0.05)
            for n in (1, 2):
                assert (await sender.send(_event(n), 5.0)).status == 200
            await busy

    try:
        asyncio.run(scenario())
    finally:
        slow.close()
        quick.close()
    assert (slow.received, quick.received) == (1, 2)
