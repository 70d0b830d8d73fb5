"""The trade_sync function's handler: a PingSource tick in, each linked account's new fills out.

`{"schedule": "trade-sync"}` (PingSource trade-sync-tick, every minute): for every enabled row
of trade_accounts, for each of its streams (Binance symbols, Bybit categories), read the fills
after the stored cursor (shared/trades/sync.py decides and checks), then per page:

1. publish each fill as a raw trade (binance.myTrades / bybit.execution.list, validated) to
   raw-trades and wait for Kafka's acknowledgement;
2. THEN, in one transaction, advance the cursor and update the account's job_logs row.

A crash between 1 and 2 leaves the cursor where it was: the next tick fetches the same fills
again and publishes the same records with the same event ids, which the normaliser stores once
(its identity (user, source, account, external id)). Nothing is skipped, nothing counted twice.

Each account's job is `trade-sync:<tick>:<account_id>` in job_logs, with a row per failed stream
(a bad key or signature, an answer failing its checks, a rate limit): those are reported and
the next tick tries again; other accounts go on. Kafka or PostgreSQL away fails the tick (503).
"""

from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Any

from shared.config import BybitSettings
from shared.errors import BadMessage, UpstreamError
from shared.events import InboundEvent, OutboundEvent
from shared.observability import metrics
from shared.observability.logging import register_secret
from shared.runtime.resources import Resources
from shared.trades.contracts import RAW_TRADE_SCHEMA, RAW_TRADE_TYPE
from shared.trades.settings import trades_settings
from shared.trades.sync import (
    BINANCE,
    MIN_BYBIT_WINDOW_MS,
    LinkedAccount,
    MissingCredential,
    StreamCursor,
    SyncAnswerRejected,
    SyncPage,
    SyncSettings,
    SyncWindowTooFull,
    binance_page,
    binance_start,
    bybit_fitting_span,
    bybit_window,
    bybit_window_fills,
    credential_for,
)
from shared.trades.sync_store import enabled_accounts, load_cursor, note_stream_error, record_sync_job, save_cursor
from shared.upstream.binance_account import BinanceAccountClient
from shared.upstream.bybit import BybitClient
from shared.upstream.http import UpstreamHttp

log = logging.getLogger(__name__)

SCHEDULE = "trade-sync"
EVENT_SOURCE = "/price-crawler/trade-sync"


def sync_settings(resources: Resources) -> SyncSettings:
    """The process's sync settings (read once); every key and secret is registered with the log redaction."""

    def build() -> SyncSettings:
        settings = SyncSettings()
        register_secret(*settings.secret_values())
        return settings

    return resources.once("trades.sync_settings", build)


def _http(resources: Resources, exchange: str) -> UpstreamHttp:
    # One HTTP layer per exchange and process: Binance's weight budget and Bybit's limit are per IP.
    if exchange == BINANCE:
        return resources.once(
            "trades.sync.http.binance", lambda: BinanceAccountClient.build_http(resources.settings.binance)
        )
    return resources.once("trades.sync.http.bybit", lambda: BybitClient.build_http(bybit_settings(resources)))


def bybit_settings(resources: Resources) -> BybitSettings:
    """BYBIT_* (read once; a test puts its own under the same name first)."""
    return resources.once("trades.sync.bybit_settings", BybitSettings)


def _tick(event: InboundEvent) -> datetime:
    try:
        data = json.loads(event.data or b"{}")
    except (ValueError, RecursionError):
        raise BadMessage('ping data is not JSON: expected {"schedule": "trade-sync"}') from None
    if not isinstance(data, dict) or data.get("schedule") != SCHEDULE:
        schedule = data.get("schedule") if isinstance(data, dict) else None
        raise BadMessage(f"unknown trade sync schedule {schedule!r}: expected {SCHEDULE!r}")
    if event.time:
        try:
            return datetime.fromisoformat(event.time.replace("Z", "+00:00")).astimezone(timezone.utc)
        except ValueError:
            pass
    return datetime.now(timezone.utc)


def run_sync_tick(event: InboundEvent, resources: Resources) -> dict[str, Any]:
    """Handle one tick (module docstring); the summary names each account's job and its counts."""
    tick_at = _tick(event)
    settings = sync_settings(resources)
    with resources.db.connection() as conn:
        accounts = enabled_accounts(conn)
    jobs = [AccountSync(resources, settings, account, tick_at, event.id).run() for account in accounts]
    return {"schedule": SCHEDULE, "accounts": len(accounts), "jobs": jobs}


class AccountSync:
    """One account's sync within one tick: its streams, its job_logs row."""

    def __init__(
        self, resources: Resources, settings: SyncSettings, account: LinkedAccount, tick_at: datetime, event_id: str
    ):
        self.resources = resources
        self.settings = settings
        self.account = account
        self.event_id = event_id
        self.job_id = f"{SCHEDULE}:{tick_at:%Y%m%dT%H%M%S.%fZ}:{account.account_id}"
        self.started = datetime.now(timezone.utc)
        self.raw_topic = trades_settings(resources).raw_topic
        self.skew = timedelta(seconds=trades_settings(resources).max_clock_skew_seconds)
        self.published = 0
        self.streams_ok = 0
        self.failures: list[tuple[str, str]] = []

    def run(self) -> dict[str, Any]:
        """Sync every stream of the account; failures are recorded per stream, never raised."""
        began = time.monotonic()
        streams = self.account.streams()
        try:
            credential = credential_for(self.settings, self.account)
        except MissingCredential as exc:
            self.failures = [(stream, str(exc)) for stream in streams] or [("account", str(exc))]
            return self._finish(len(streams), began)
        key, secret = credential.api_key.get_secret_value(), credential.api_secret.get_secret_value()
        for stream in streams:
            try:
                if self.account.exchange == BINANCE:
                    self._sync_binance(stream, key, secret)
                else:
                    self._sync_bybit(stream, key, secret)
                self.streams_ok += 1
            except (UpstreamError, SyncAnswerRejected, SyncWindowTooFull) as exc:
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("trade sync %s %s: %s", self.account.account_id, stream, reason)
                self.failures.append((stream, reason))
                with self.resources.db.connection() as conn:
                    note_stream_error(conn, self.account.account_id, stream, reason, self.job_id)
        return self._finish(len(streams), began)

    # --- Binance: fromId pages -----------------------------------------------------------------

    def _sync_binance(self, symbol: str, key: str, secret: str) -> None:
        client = BinanceAccountClient(
            _http(self.resources, BINANCE), key, secret, recv_window_ms=self.settings.sync_recv_window_ms
        )
        limit = self.settings.sync_binance_page_limit
        cursor = self._cursor(symbol)
        for _ in range(self.settings.sync_max_pages):
            rows = client.my_trades(symbol, binance_start(cursor), limit)
            page = binance_page(self.account, cursor, rows, limit, datetime.now(timezone.utc), self.skew)
            self._commit(page)
            cursor = page.cursor
            if not page.more:
                return

    # --- Bybit: time windows read to their last cursor page --------------------------------------

    def _sync_bybit(self, category: str, key: str, secret: str) -> None:
        client = BybitClient(
            _http(self.resources, "bybit"), key, secret, recv_window_ms=self.settings.sync_recv_window_ms
        )
        limit = self.settings.sync_bybit_page_limit
        cursor = self._cursor(category)
        pages_left = self.settings.sync_max_pages
        widest = int(self.settings.sync_bybit_window_seconds * 1000)
        span = widest
        while pages_left > 0:
            window = bybit_window(cursor, int(time.time() * 1000), self.settings, span)
            if window is None:
                return
            width = window[1] - window[0] + 1
            budget_at_start = pages_left
            page = client.execution_list(category, window[0], window[1], None, limit)
            pages_left -= 1
            if page.next_cursor is not None and page.rows:
                # Judge from the first page whether the window fits what this tick may still read.
                fitting = bybit_fitting_span(window, page.rows, pages_left + 1)
                if fitting < width:
                    span = fitting
                    continue
            pages = [page.rows]
            while page.next_cursor is not None and page.rows and pages_left > 0:
                page = client.execution_list(category, window[0], window[1], page.next_cursor, limit)
                pages_left -= 1
                pages.append(page.rows)
            if page.next_cursor is not None and page.rows:
                # Denser than the first page said: a shorter window, never a cut one.
                if width <= MIN_BYBIT_WINDOW_MS and budget_at_start == self.settings.sync_max_pages:
                    raise SyncWindowTooFull(f"{width} ms of {category} holds more than a tick's pages of {limit}")
                span = max(MIN_BYBIT_WINDOW_MS, width // 2)
                continue  # or, with no pages left this tick, the next tick goes on from the cursor
            synced = bybit_window_fills(self.account, cursor, window, pages, datetime.now(timezone.utc), self.skew)
            self._commit(synced)
            cursor = synced.cursor
            if len(pages) * 4 <= self.settings.sync_max_pages:
                span = min(widest, span * 2)  # a sparse window: the next may be wider

    # --- publish, then commit ----------------------------------------------------------------------

    def _cursor(self, stream: str) -> StreamCursor:
        with self.resources.db.connection() as conn:
            return load_cursor(conn, self.account.account_id, stream)

    def _commit(self, page: SyncPage) -> None:
        """Publish the page's raw trades, wait for Kafka, then move the cursor with the job's row."""
        events = [
            OutboundEvent(
                type=RAW_TRADE_TYPE,
                source=EVENT_SOURCE,
                data=record,
                key=self.account.user_id,
                id=event_id,
                subject=self.account.account_id,
                dataschema=RAW_TRADE_SCHEMA,
            )
            for record, event_id in zip(page.records, page.event_ids, strict=True)
        ]
        self.resources.producer.publish(self.raw_topic, events, timeout=self.settings.sync_publish_timeout_seconds)
        with self.resources.db.transaction() as conn:
            save_cursor(conn, page.cursor, self.job_id)
            record_sync_job(
                conn,
                job_id=self.job_id,
                status="running",
                message=f"{self.published + len(events)} fills published so far",
                streams=len(self.account.streams()),
                streams_ok=self.streams_ok,
                started_at=self.started,
                event_id=self.event_id,
            )
        self.published += len(events)
        if events:
            metrics.count("crawler_trades_fills", len(events), function="trade_sync", outcome="synced")

    def _finish(self, streams: int, began: float) -> dict[str, Any]:
        if not self.failures:
            status = "succeeded"
        elif self.streams_ok:
            status = "partial"
        else:
            status = "failed"
        message = f"{self.published} fills published; {self.streams_ok} of {streams} streams synced"
        if self.failures:
            message += "; " + "; ".join(f"{ref}: {reason}" for ref, reason in self.failures)[:1500]
        with self.resources.db.connection() as conn:
            record_sync_job(
                conn,
                job_id=self.job_id,
                status=status,
                message=message,
                streams=streams,
                streams_ok=self.streams_ok,
                failures=self.failures,
                started_at=self.started,
                event_id=self.event_id,
            )
        log.info("trade sync %s: %s (%.2fs)", self.account.account_id, message, time.monotonic() - began)
        return {
            "job_id": self.job_id,
            "account_id": self.account.account_id,
            "status": status,
            "published": self.published,
            "failures": dict(self.failures),
        }
