"""Exchange sync, the pure part: linked accounts, credentials, cursors and the checks of each page.

The sync function (shared/trades/sync_job.py) asks each linked account's exchange for the fills
after its stored cursor and publishes each as a raw trade; the decisions are here, free of I/O:

- **Binance** `GET /api/v3/myTrades?symbol=&fromId=&limit=` answers trades with id >= fromId,
  oldest first. A page is accepted only if every row is of the symbol asked, has an id >= fromId,
  ids strictly increasing, and normalises (`binance_my_trade`); the next fromId is the last id + 1.
  A full page (as many rows as `limit`) means more may follow.
- **Bybit** `GET /v5/execution/list?category=&startTime=&endTime=&cursor=` answers newest first
  within a window of at most 7 days, paged by `nextPageCursor`. Its cursor is only valid within
  one query, so the stored cursor is time: `next_start_ms`, everything before it synced. A window
  [start, end] ends `settle` seconds before now (fills appear in the list with a delay), is read
  to its last page, and its fills published oldest first; then the cursor moves to end + 1.
  A window with more pages than a tick allows is halved (`SyncWindowTooFull`), never cut.
- A row failing these checks refuses the whole page: nothing of it is published, the cursor
  stays, the job reports it (`SyncAnswerRejected`) and the next tick asks again. Never a wrong row.

Credentials: `TRADES_EXCHANGE_CREDENTIALS` maps a credential name to {api_key, api_secret}
(a Kubernetes Secret's key, or the environment); accounts in the database name the credential,
never hold it. Both values are `SecretStr`, registered with the log redaction, and never put
in a message, an error or a row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.trades.contracts import RAW_TRADE_SCHEMA, RawKind, millis_text, validate_record
from shared.trades.errors import TradeRejected
from shared.trades.models import derived_id
from shared.trades.normalize import Received, binance_my_trade, bybit_execution

BINANCE = "binance"
BYBIT = "bybit"
EXCHANGES = (BINANCE, BYBIT)
BYBIT_MAX_WINDOW_MS = 7 * 24 * 3600 * 1000
# The shortest Bybit window asked: a second holding more fills than a tick reads is an error.
MIN_BYBIT_WINDOW_MS = 1000


class ExchangeCredential(BaseModel):
    """One API key pair. Only `get_secret_value()` reveals them, and only the signing clients call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr
    api_secret: SecretStr


class SyncSettings(BaseSettings):
    """TRADES_* settings of exchange sync (docs/trades.md, "Exchange sync")."""

    model_config = SettingsConfigDict(env_prefix="TRADES_", extra="ignore", frozen=True)

    # JSON: {"<credential name>": {"api_key": "...", "api_secret": "..."}}; from a Secret.
    exchange_credentials: dict[str, ExchangeCredential] = Field(default_factory=dict)
    # Pages read per stream and tick at most: a backlog is caught up over several ticks.
    sync_max_pages: int = Field(default=20, ge=1)
    sync_binance_page_limit: int = Field(default=1000, ge=1, le=1000)
    sync_bybit_page_limit: int = Field(default=100, ge=1, le=100)
    sync_recv_window_ms: int = Field(default=5000, ge=1, le=60000)
    # A new Bybit account is synced from this long ago (Bybit keeps 2 years; one window is 7 days).
    sync_bybit_lookback_seconds: float = Field(default=7 * 24 * 3600.0, gt=0)
    # Longest Bybit window asked at once (<= 7 days); halved while it holds more than sync_max_pages.
    sync_bybit_window_seconds: float = Field(default=24 * 3600.0, gt=0, le=7 * 24 * 3600.0)
    # A window ends this long before now, so fills still being written are not skipped.
    sync_settle_seconds: float = Field(default=2.0, ge=0)
    # How long to wait for Kafka to acknowledge a page's raw trades.
    sync_publish_timeout_seconds: float = Field(default=30.0, gt=0)

    def secret_values(self) -> list[str]:
        """Every key and secret, for the log redaction."""
        values = []
        for credential in self.exchange_credentials.values():
            values += [credential.api_key.get_secret_value(), credential.api_secret.get_secret_value()]
        return values


@dataclass(frozen=True, slots=True)
class LinkedAccount:
    """A row of trade_accounts: whose account, on which exchange, what to sync, which credential."""

    account_id: str
    user_id: str
    exchange: str
    label: str
    symbols: tuple[str, ...]
    categories: tuple[str, ...]
    credential_name: str

    def streams(self) -> tuple[str, ...]:
        """What one cursor each covers: Binance symbols, Bybit categories."""
        return self.symbols if self.exchange == BINANCE else self.categories


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """A row of trade_sync_cursors (a new stream starts with none of the positions set)."""

    account_id: str
    stream: str
    from_id: int | None = None
    next_start_ms: int | None = None
    last_exec_time_ms: int | None = None
    last_exec_id: str | None = None
    fills_synced: int = 0


class SyncAnswerRejected(Exception):
    """A signed answer failed its checks: nothing of the page is published, the cursor stays."""


class SyncWindowTooFull(Exception):
    """A Bybit window holds more pages than a tick reads: ask a shorter one."""


class MissingCredential(Exception):
    """An account names a credential the environment does not hold."""


@dataclass(frozen=True, slots=True)
class SyncPage:
    """The fills of one accepted page, ready to publish, and the cursor once Kafka has them."""

    records: list[dict[str, Any]]  # raw-trades records (validated)
    event_ids: list[str]
    cursor: StreamCursor
    more: bool  # another page may follow now


def credential_for(settings: SyncSettings, account: LinkedAccount) -> ExchangeCredential:
    """The account's key pair; `MissingCredential` (naming the credential, never a value) when absent."""
    credential = settings.exchange_credentials.get(account.credential_name)
    if credential is None:
        raise MissingCredential(
            f"credential {account.credential_name!r} is not configured (TRADES_EXCHANGE_CREDENTIALS)"
        )
    return credential


def raw_event_id(account: LinkedAccount, external_id: str) -> str:
    """The CloudEvent id of a fill's raw trade: the same fill re-fetched publishes the same id."""
    return derived_id("raw", account.user_id, account.exchange, account.label, external_id)


def _raw(account: LinkedAccount, kind: RawKind, payload: Any, received_at: datetime) -> dict[str, Any]:
    record = {
        "user_id": account.user_id,
        "kind": kind.value,
        "received_at": millis_text(received_at),
        "account": account.label,
        "idempotency_key": None,
        "payload": payload,
    }
    validate_record(RAW_TRADE_SCHEMA, record)
    return record


def _received(account: LinkedAccount, received_at: datetime, skew: timedelta) -> Received:
    return Received(account.user_id, received_at, account=account.label, clock_skew=skew)


# --- Binance ---------------------------------------------------------------------------------


def binance_start(cursor: StreamCursor) -> int:
    """The fromId to ask for: the stored one, or 0 (the account's first trade) for a new stream."""
    return cursor.from_id if cursor.from_id is not None else 0


def binance_page(
    account: LinkedAccount,
    cursor: StreamCursor,
    rows: Sequence[Any],
    limit: int,
    received_at: datetime,
    skew: timedelta = timedelta(minutes=5),
) -> SyncPage:
    """Check one myTrades answer against what was asked and build its raw trades and next cursor."""
    from_id = binance_start(cursor)
    if len(rows) > limit:
        raise SyncAnswerRejected(f"myTrades answered {len(rows)} rows for limit {limit}")
    records, ids = [], []
    previous = from_id - 1
    received = _received(account, received_at, skew)
    last_time: int | None = cursor.last_exec_time_ms
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise SyncAnswerRejected(f"myTrades row {index} is not an object")
        trade_id = row.get("id")
        if not isinstance(trade_id, int) or isinstance(trade_id, bool):
            raise SyncAnswerRejected(f"myTrades row {index}: id is not an integer")
        if trade_id <= previous:
            raise SyncAnswerRejected(
                f"myTrades row {index}: id {trade_id} is not after {previous} (asked fromId={from_id})"
            )
        if row.get("symbol") != cursor.stream:
            raise SyncAnswerRejected(f"myTrades row {index}: symbol {str(row.get('symbol'))[:20]!r} was not asked")
        try:
            fill = binance_my_trade(row, received)
        except TradeRejected as exc:
            raise SyncAnswerRejected(f"myTrades row {index} (id {trade_id}): {exc.field}: {exc.detail}") from None
        previous = trade_id
        last_time = int(fill.executed_at.timestamp() * 1000)
        records.append(_raw(account, RawKind.BINANCE_MY_TRADES, dict(row), received_at))
        ids.append(raw_event_id(account, str(trade_id)))
    if not rows:
        return SyncPage([], [], cursor, more=False)
    advanced = replace(
        cursor,
        from_id=previous + 1,
        last_exec_time_ms=last_time,
        last_exec_id=str(previous),
        fills_synced=cursor.fills_synced + len(rows),
    )
    return SyncPage(records, ids, advanced, more=len(rows) >= limit)


# --- Bybit -----------------------------------------------------------------------------------


def bybit_window(
    cursor: StreamCursor, now_ms: int, settings: SyncSettings, window_ms: int | None = None
) -> tuple[int, int] | None:
    """The next window [start, end] to read, or None when nothing settled is left to ask."""
    settled = now_ms - int(settings.sync_settle_seconds * 1000)
    start = cursor.next_start_ms
    if start is None:
        start = now_ms - int(settings.sync_bybit_lookback_seconds * 1000)
    span = window_ms if window_ms is not None else int(settings.sync_bybit_window_seconds * 1000)
    span = max(1, min(span, BYBIT_MAX_WINDOW_MS))
    end = min(start + span - 1, settled)
    if end < start:
        return None
    return start, end


def bybit_fitting_span(window: tuple[int, int], first_page: Sequence[Any], pages: int) -> int:
    """A window width (ms) from `window`'s start whose fills should fit in `pages` pages, judged
    from the window's first (full) page.

    Bybit answers newest first, so the first page covers [its oldest execTime, end]: at that
    density half of `pages` pages' worth of fills span `covered * pages / 2`; and the time
    before the oldest row seen can be read first whatever it holds. The wider of the two, at
    least `MIN_BYBIT_WINDOW_MS`, at most the window's own width.
    """
    start, end = window
    width = end - start + 1
    times = [
        int(t)
        for t in (row.get("execTime") for row in first_page if isinstance(row, Mapping))
        if isinstance(t, str) and t.isdigit()
    ]
    if not times:
        return width
    oldest = max(start, min(min(times), end))
    by_density = int((end - oldest + 1) * pages / 2)
    return max(MIN_BYBIT_WINDOW_MS, min(width, max(by_density, oldest - start)))


def bybit_window_fills(
    account: LinkedAccount,
    cursor: StreamCursor,
    window: tuple[int, int],
    pages: Sequence[Sequence[Any]],
    received_at: datetime,
    skew: timedelta = timedelta(minutes=5),
) -> SyncPage:
    """Check every page of one window and build its raw trades (oldest first) and the cursor after it.

    Rows of other exec types (Funding, Settle, ...) are no fills and not published; a row outside
    the window, of another category, or that does not normalise refuses the window.
    """
    start, end = window
    received = _received(account, received_at, skew)
    seen: dict[str, tuple[int, dict[str, Any]]] = {}
    for page_index, rows in enumerate(pages):
        for index, row in enumerate(rows):
            where = f"execution list page {page_index} row {index}"
            if not isinstance(row, Mapping):
                raise SyncAnswerRejected(f"{where} is not an object")
            exec_id = row.get("execId")
            if not isinstance(exec_id, str) or not exec_id:
                raise SyncAnswerRejected(f"{where}: execId is not a string")
            try:
                fill = bybit_execution(row, received)
            except TradeRejected as exc:
                raise SyncAnswerRejected(f"{where} (execId {exec_id[:64]}): {exc.field}: {exc.detail}") from None
            raw_time = row.get("execTime")
            exec_ms = int(raw_time) if isinstance(raw_time, str) and raw_time.isdigit() else None
            if exec_ms is None or not start <= exec_ms <= end:
                raise SyncAnswerRejected(
                    f"{where} (execId {exec_id[:64]}): execTime {str(raw_time)[:20]} outside [{start}, {end}]"
                )
            if fill is None:
                continue
            seen.setdefault(exec_id, (exec_ms, dict(row)))  # a row repeated across pages counts once
    ordered = sorted(seen.items(), key=lambda item: (item[1][0], item[0]))
    records = [
        _raw(account, RawKind.BYBIT_EXECUTION_LIST, bybit_payload(cursor.stream, row), received_at)
        for _, (_, row) in ordered
    ]
    ids = [raw_event_id(account, exec_id) for exec_id, _ in ordered]
    last_time, last_id = cursor.last_exec_time_ms, cursor.last_exec_id
    if ordered:
        last_id, (last_time, _) = ordered[-1][0], ordered[-1][1]
    advanced = replace(
        cursor,
        next_start_ms=end + 1,
        last_exec_time_ms=last_time,
        last_exec_id=last_id,
        fills_synced=cursor.fills_synced + len(ordered),
    )
    return SyncPage(records, ids, advanced, more=True)


def bybit_payload(category: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """One execution as the raw-trades payload the normaliser reads: the answer's envelope, one row."""
    return {"retCode": 0, "retMsg": "OK", "result": {"category": category, "list": [dict(row)]}}
