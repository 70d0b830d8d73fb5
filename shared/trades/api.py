"""The trades HTTP API (docs/trades-openapi.yaml): a caller's own trades, in and out.

    POST /api/trades            one trade (an object) or a batch (an array): 202 once Kafka confirmed
                                every raw record on raw-trades; 400 naming the index and field of
                                each bad trade (nothing of the batch is published then)
    GET  /api/trades            the caller's trades, newest entry first, paged by cursor
    GET  /api/trades/{trade_id} one of the caller's trades; 404 for any other (another user's too)
    GET  /api/trades/feed       the caller's enriched trades and alerts after a cursor, in commit
                                order: resuming from the last cursor misses nothing, repeats nothing

Every route authenticates the caller (shared/trades/auth.py): the token's subject is the user
id, and a caller reads and writes only its own trades: naming another user (`user_id` in a
trade or the query) is 403, another user's trade is 404 (never disclosed).

Idempotency: the `Idempotency-Key` header names the request; trade i of a batch is
`<key>:<i>` (a single trade is `<key>`), unless the trade carries its own `client_trade_id`.
That key is the manual fill's identity, so a retry with the same key stores nothing new (the
normaliser keeps the first trade of a key). Without either, each trade gets a random key and a
retry may store it twice: the answer says `idempotent: false`.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.errors import DependencyUnavailable
from shared.events import OutboundEvent
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from shared.trades import feed, store
from shared.trades.auth import Unauthenticated, authenticated_user, header
from shared.trades.contracts import (
    RAW_TRADE_SCHEMA,
    RAW_TRADE_TYPE,
    UUID_TEXT,
    RawKind,
    millis_text,
    validate_record,
)
from shared.trades.errors import TradeRejected
from shared.trades.imports import ImportOptions, import_csv, import_report
from shared.trades.models import Fill, derived_id
from shared.trades.normalize import MAX_ID_CHARS, Received, manual_entry, symbol_field
from shared.trades.settings import TradesSettings
from shared.upstream.jsonbody import decode_json

log = logging.getLogger(__name__)

API_PREFIX = "/api/trades"
IMPORT_PREFIX = "/api/trades/import"
FEED_PATH = "/api/trades/feed"
EVENT_SOURCE = "/price-crawler/trades"
_TRADE_PATH = re.compile(r"^/api/trades/([^/]+)$")
_IMPORT_PATH = re.compile(r"^/api/trades/import/([^/]+)$")
_CURSOR = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)~(" + UUID_TEXT[1:-1] + r")$")
_KEY = re.compile(r"^[\x21-\x7e]{1,100}$")  # visible ASCII, as HTTP header values are


class ApiError(Exception):
    """An answer other than 2xx: status, reason and extra fields of the body."""

    def __init__(self, status: int, reason: str, **extra: Any):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra


class TradesApi:
    """Answers the API's requests for one process (its Kafka producer and database pool)."""

    def __init__(self, resources: Resources, settings: TradesSettings):
        self.resources = resources
        self.settings = settings

    def handle(self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        """Answer one request under /api/trades."""
        route = "unmatched"
        try:
            if path == API_PREFIX:
                route = "trades"
                if method == "POST":
                    response = self._post(self._user(headers), headers, body)
                elif method == "GET":
                    response = self._list(self._user(headers), query)
                else:
                    raise ApiError(405, f"method {method} not allowed", allow="GET, POST")
            elif path == IMPORT_PREFIX:
                route = "import"
                if method != "POST":
                    raise ApiError(405, f"method {method} not allowed", allow="POST")
                response = self._import(self._user(headers), query, body)
            elif match := _IMPORT_PATH.match(path):
                route = "import_status"
                if method != "GET":
                    raise ApiError(405, f"method {method} not allowed", allow="GET")
                response = self._import_status(self._user(headers), match.group(1))
            elif path == FEED_PATH:
                route = "feed"
                if method != "GET":
                    raise ApiError(405, f"method {method} not allowed", allow="GET")
                response = self._feed(self._user(headers), query)
            elif match := _TRADE_PATH.match(path):
                route = "trade"
                if method != "GET":
                    raise ApiError(405, f"method {method} not allowed", allow="GET")
                response = self._one(self._user(headers), match.group(1))
            else:
                raise ApiError(404, f"no route for {method} {path[:200]}")
        except ApiError as exc:
            extra_headers = {"Allow": exc.extra.pop("allow")} if "allow" in exc.extra else {}
            if exc.status == 401:
                extra_headers["WWW-Authenticate"] = 'Bearer realm="trades"'
            response = HttpResponse.json(exc.status, {"error": exc.reason, **exc.extra}, extra_headers)
        except DependencyUnavailable as exc:
            log.warning("trades %s: dependency unavailable: %s", route, exc)
            response = HttpResponse.json(503, {"error": f"unavailable, retry: {exc}"}, {"Retry-After": "1"})
        except Exception as exc:  # a bug: say so, keep serving
            log.exception("trades %s failed", route)
            response = HttpResponse.json(500, {"error": f"internal error: {type(exc).__name__}"})
        metrics.count("crawler_trades_api_requests", route=route, method=method, status=str(response.status))
        return response

    # --- who -------------------------------------------------------------------------------------

    def _user(self, headers: Mapping[str, str]) -> str:
        try:
            return authenticated_user(headers, self.settings)
        except Unauthenticated as exc:
            raise ApiError(401, exc.reason) from None

    # --- POST /api/trades -------------------------------------------------------------------------

    def _post(self, user_id: str, headers: Mapping[str, str], body: bytes) -> HttpResponse:
        if len(body) > self.settings.max_body_bytes:
            raise ApiError(413, f"body larger than {self.settings.max_body_bytes} bytes")
        try:
            document = decode_json(body)
        except ValueError as exc:
            raise ApiError(400, f"body is not JSON: {exc}") from None
        batch = isinstance(document, list)
        items = document if batch else [document]
        if not items:
            raise ApiError(400, "an empty batch: send one trade or an array of trades")
        if len(items) > self.settings.max_batch_trades:
            raise ApiError(400, f"at most {self.settings.max_batch_trades} trades per request, got {len(items)}")
        key = header(headers, "Idempotency-Key")
        if key is not None and not _KEY.fullmatch(key):
            raise ApiError(400, "Idempotency-Key must be 1 to 100 visible ASCII characters")
        received_at = datetime.now(timezone.utc)
        received = Received(user_id, received_at)
        errors: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        events: list[OutboundEvent] = []
        for index, item in enumerate(items):
            try:
                client_key, payload = self._client_key(user_id, item, key, index if batch else None)
                normalised = manual_entry(payload, received, client_key)  # 400 now, not a dead letter later
            except TradeRejected as exc:
                errors.append({"index": index, "field": exc.field, "error": exc.detail})
                continue
            trade_id = normalised.fill_id if isinstance(normalised, Fill) else normalised.trade_id
            accepted.append({"index": index, "client_trade_id": client_key, "id": trade_id})
            raw = {
                "user_id": user_id,
                "kind": RawKind.MANUAL.value,
                "received_at": millis_text(received_at),
                "account": None,
                "idempotency_key": client_key,
                "payload": payload,
            }
            validate_record(RAW_TRADE_SCHEMA, raw)
            # The event id is the trade's identity: a retried request writes the same id again.
            events.append(
                OutboundEvent(
                    type=RAW_TRADE_TYPE,
                    source=EVENT_SOURCE,
                    data=raw,
                    key=user_id,
                    id=derived_id("raw", user_id, client_key),
                    dataschema=RAW_TRADE_SCHEMA,
                )
            )
        if errors:
            raise ApiError(
                400, f"{len(errors)} of {len(items)} trades are invalid; nothing was accepted", errors=errors
            )
        self.resources.producer.publish(self.settings.raw_topic, events)  # returns once Kafka confirmed all
        metrics.count("crawler_trades_fills", len(events), function="trades", outcome="accepted")
        idempotent = not any(a["client_trade_id"].startswith("random:") for a in accepted)
        return HttpResponse.json(202, {"accepted": len(accepted), "idempotent": idempotent, "trades": accepted})

    def _client_key(self, user_id: str, item: Any, key: str | None, index: int | None) -> tuple[str, Any]:
        """The client key of one trade and its payload (without `user_id`, which must be the caller's)."""
        if not isinstance(item, dict):
            raise TradeRejected("", "a trade must be a JSON object")
        payload = dict(item)
        if "user_id" in payload:
            if payload.pop("user_id") != user_id:
                raise ApiError(403, "a trade may only be written for the authenticated user")
        own = payload.pop("client_trade_id", None)
        if own is not None:
            if not isinstance(own, str) or not own.strip() or len(own) > MAX_ID_CHARS:
                raise TradeRejected("client_trade_id", f"must be a string of 1 to {MAX_ID_CHARS} characters")
            return own.strip(), payload
        if key is not None:
            return (key if index is None else f"{key}:{index}"), payload
        return f"random:{uuid.uuid4()}", payload

    # --- GET ---------------------------------------------------------------------------------------

    def _list(self, user_id: str, query: str) -> HttpResponse:
        params = _query(query, ("limit", "cursor", "symbol", "user_id"))
        if "user_id" in params and params["user_id"] != user_id:
            raise ApiError(403, "a caller reads only its own trades")
        limit = self.settings.default_page_size
        if "limit" in params:
            if (
                not re.fullmatch(r"[0-9]{1,6}", params["limit"])
                or not 1 <= int(params["limit"]) <= self.settings.max_page_size
            ):
                raise ApiError(400, f"limit must be a whole number from 1 to {self.settings.max_page_size}")
            limit = int(params["limit"])
        after = None
        if "cursor" in params:
            match = _CURSOR.fullmatch(params["cursor"])
            if match is None:
                raise ApiError(400, "cursor must be the next_cursor of a previous page")
            after = (datetime.fromisoformat(match.group(1).replace("Z", "+00:00")), match.group(2))
        symbol = None
        if "symbol" in params:
            try:
                symbol = symbol_field(params["symbol"])
            except TradeRejected as exc:
                raise ApiError(400, f"symbol {exc.detail}") from None
        with self.resources.db.connection() as conn:
            rows = store.list_trades(conn, user_id, after=after, limit=limit + 1, symbol=symbol)
        page, more = rows[:limit], len(rows) > limit
        cursor = f"{page[-1]['entry_time']}~{page[-1]['trade_id']}" if more else None
        return HttpResponse.json(200, {"trades": page, "next_cursor": cursor}, {"Cache-Control": "no-store"})

    def _feed(self, user_id: str, query: str) -> HttpResponse:
        """The caller's enriched trades and alerts after a cursor, in commit order (shared/trades/feed.py)."""
        params = _query(query, ("cursor", "limit", "user_id"))
        if "user_id" in params and params["user_id"] != user_id:
            raise ApiError(403, "a caller follows only its own feed")
        after = 0
        if "cursor" in params:
            if not re.fullmatch(r"[0-9]{1,18}", params["cursor"]):
                raise ApiError(400, "cursor must be the next_cursor of a previous answer")
            after = int(params["cursor"])
        limit = self.settings.default_page_size
        if "limit" in params:
            if (
                not re.fullmatch(r"[0-9]{1,6}", params["limit"])
                or not 1 <= int(params["limit"]) <= self.settings.max_page_size
            ):
                raise ApiError(400, f"limit must be a whole number from 1 to {self.settings.max_page_size}")
            limit = int(params["limit"])
        with self.resources.db.connection() as conn:
            items = feed.read(conn, user_id, after=after, limit=limit)
        body = {
            "items": [{"cursor": str(i.seq), "kind": i.kind, "id": i.item_id, "record": i.record} for i in items],
            "next_cursor": str(items[-1].seq if items else after),
        }
        return HttpResponse.json(200, body, {"Cache-Control": "no-store"})

    # --- CSV import ----------------------------------------------------------------------------------

    def _import(self, user_id: str, query: str, body: bytes) -> HttpResponse:
        params = _query(query, ("decimal", "timezone", "account"))
        if len(body) > self.settings.max_import_bytes:
            raise ApiError(413, f"file larger than {self.settings.max_import_bytes} bytes (TRADES_MAX_IMPORT_BYTES)")
        decimal = params.get("decimal", "point")
        if decimal not in ("point", "comma"):
            raise ApiError(400, "decimal must be point or comma")
        zone = params.get("timezone")
        if zone is not None:
            try:
                ZoneInfo(zone)
            except (ValueError, ZoneInfoNotFoundError):
                raise ApiError(400, f"unknown timezone {zone[:40]!r}; use an IANA name such as Europe/Berlin") from None
        account = params.get("account", "default")
        if not re.fullmatch(r"[A-Za-z0-9._:@-]{1,128}", account):
            raise ApiError(400, "account must be 1 to 128 letters, digits or ._:@-")
        options = ImportOptions(decimal_comma=decimal == "comma", timezone=zone, account=account)
        try:
            report, fresh = import_csv(self.resources, self.settings, user_id, body, options)
        except TradeRejected as exc:
            raise ApiError(400, exc.reason) from None
        return HttpResponse.json(202 if fresh else 200, report.json())

    def _import_status(self, user_id: str, import_id: str) -> HttpResponse:
        if not re.fullmatch(UUID_TEXT, import_id):
            raise ApiError(404, "no such import")
        with self.resources.db.connection() as conn:
            report = import_report(conn, user_id, import_id)
        if report is None:
            raise ApiError(404, "no such import")
        return HttpResponse.json(200, report.json(), {"Cache-Control": "no-store"})

    def _one(self, user_id: str, trade_id: str) -> HttpResponse:
        if not re.fullmatch(UUID_TEXT, trade_id):
            raise ApiError(404, "no such trade")
        with self.resources.db.connection() as conn:
            record = store.trade_of(conn, user_id, trade_id)
        if record is None:
            raise ApiError(404, "no such trade")  # another user's trade is not disclosed
        return HttpResponse.json(200, record, {"Cache-Control": "no-store"})


def _query(query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    if len(query) > 4096:
        raise ApiError(400, "query string longer than 4096 characters")
    try:
        values = parse_qs(query, keep_blank_values=True, max_num_fields=20)
    except ValueError as exc:
        raise ApiError(400, f"malformed query string: {exc}") from None
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ApiError(
            400, f"unknown parameter(s) {', '.join(u[:40] for u in unknown)}; accepted: {', '.join(allowed)}"
        )
    result = {}
    for name, found in values.items():
        if len(found) != 1 or not found[0] or "\x00" in found[0]:
            raise ApiError(400, f"parameter {name} must be given once, with a value")
        result[name] = found[0]
    return result
