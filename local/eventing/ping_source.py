"""PingSource emulation: a CloudEvent per cron tick, sent in binary HTTP mode (knative-eventing.md e).

Each source is one task on the plane's event loop that sleeps until the next fire time. Per
tick: a random 0–499 ms pause (Knative's pingsource-mt-adapter does it to spread load), a
fresh event, 5 retries with exponential backoff from 50 ms, then the event is dropped.
Knative fires a tick even while the previous send is still retrying; so do we, but at most
`ping_max_in_flight` sends per source run at once — further ticks are skipped and counted,
so a slow scheduler function never makes the plane pile up work.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from datetime import UTC, datetime, timedelta

from local.eventing.cloudevent import CloudEvent, format_send_time
from local.eventing.config import EventingSettings
from local.eventing.delivery import DeliveryContext, deliver
from local.eventing.destinations import ResolvedPingSource
from local.eventing.manifests import PingSourceManifest
from local.eventing.retry_policy import is_retryable_status_for_ping, ping_retry_policy
from local.eventing.senders import EventSender
from local.eventing.telemetry import EventingMetrics, log_outcome, source_key

log = logging.getLogger(__name__)

PING_EVENT_TYPE = "dev.knative.sources.ping"
_LATE_TOLERANCE = timedelta(seconds=1)


def make_ping_event(source: PingSourceManifest, sent_at: datetime, event_id: str | None = None) -> CloudEvent:
    """The event of one tick: fresh id, send time, configured data and content type, overrides."""
    attributes = {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source.cloudevent_source,
        "type": PING_EVENT_TYPE,
        "time": format_send_time(sent_at),
    }
    if source.content_type:
        attributes["datacontenttype"] = source.content_type
    attributes.update(source.ce_overrides)
    return CloudEvent(attributes=attributes, data=source.data)


class PingSourceRunner:
    """Fires one PingSource's ticks on the event loop."""

    def __init__(
        self,
        resolved: ResolvedPingSource,
        *,
        sender: EventSender,
        settings: EventingSettings,
        metrics: EventingMetrics,
    ):
        self.manifest = resolved.manifest
        self.key = source_key("PingSource", self.manifest.namespace, self.manifest.name)
        self._sender = sender
        self._settings = settings
        self._metrics = metrics
        self._policy = ping_retry_policy(int(settings.ping_timeout_seconds * 1000))
        self._in_flight = 0
        self._sends: set[asyncio.Task] = set()
        metrics.register(self.key, "PingSource")

    async def run(self) -> None:
        """Tick forever (until cancelled)."""
        schedule = self.manifest.schedule
        fire_at = schedule.next_after(datetime.now(UTC))
        log.info("PingSource %s: schedule %r, first tick at %s", self.key, schedule.expression, fire_at.isoformat())
        while True:
            delay = (fire_at - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            self._tick()
            following = schedule.next_after(fire_at)
            now = datetime.now(UTC)
            if following < now - _LATE_TOLERANCE:
                # the process was suspended or starved: like robfig/cron, missed ticks are not replayed
                log.warning("PingSource %s: fell behind schedule; resuming from now", self.key)
                following = schedule.next_after(now)
            fire_at = following

    def _tick(self) -> None:
        if self._in_flight >= self._settings.ping_max_in_flight:
            self._metrics.tick_skipped(self.key)
            log_outcome(
                logging.WARNING,
                "tick skipped: previous sends still in flight",
                source=self.key,
                in_flight=self._in_flight,
                outcome="skipped",
            )
            return
        self._metrics.event_received(self.key)
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._send())
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _send(self) -> None:
        try:
            if self._settings.ping_jitter_ms > 0:
                await asyncio.sleep(random.randrange(self._settings.ping_jitter_ms) / 1000)
            event = make_ping_event(self.manifest, datetime.now(UTC))
            await deliver(
                event,
                self._sender,
                self._policy,
                is_retryable=is_retryable_status_for_ping,
                context=DeliveryContext(self.key, self._metrics, {}),
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("PingSource %s: unexpected error while sending a tick", self.key)
        finally:
            self._in_flight -= 1

    @property
    def in_flight(self) -> int:
        """Sends of this source currently running."""
        return self._in_flight
