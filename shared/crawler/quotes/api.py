"""The quotes HTTP API (docs/api.md, docs/openapi.yaml): prices, profiles, candles, KPIs, volatility.

`QuotesApi.handle(path, query)` answers one GET with an `HttpResponse`. Every input is
validated before the database is asked: a malformed parameter is 400 with the reason, an
unknown token 404, an ambiguous symbol 409 with the candidates. Lists are bounded and
paged with cursors that name a position (after the last item of the page), so any cursor of
the documented form is a valid one: docs/openapi.yaml states every limit the code enforces.
Money is a JSON string holding the exact stored decimal (`"0.000000000012345"`, never
`1.2345E-11`, never a float).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, overload
from urllib.parse import parse_qs, unquote

from shared.crawler import gold, store
from shared.crawler.quotes import reads
from shared.errors import DependencyUnavailable
from shared.observability import metrics
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
MAX_TOKENS_PER_REQUEST = 100
MAX_PAGE_SIZE = 1000
DEFAULT_CANDLE_LIMIT = 200
DEFAULT_TOKEN_LIMIT = 100
MAX_VOLATILITY_PERIODS = 1000
TOKEN_SETS = ("top100", "trending")
# The times a request may name: Python's datetime and PostgreSQL both hold them, and a window
# computed from them (`to - limit × resolution`) cannot leave that range.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(9999, 1, 1, tzinfo=timezone.utc)
MAX_CURSOR_KEY = 512  # the token key part of a token-list cursor
# Large enough for the longest request the document allows, however it is percent-encoded
# (MAX_TOKENS_TEXT characters of 4-byte UTF-8 are 12 characters each).
MAX_QUERY_LENGTH = 65536
MAX_TOKENS_TEXT = 5400  # 100 contracts of 53 characters, comma-separated
INT32_MAX = 2**31 - 1  # rank and tick columns are PostgreSQL integers


class ApiError(Exception):
    """An answer other than 200: status, reason, and extra fields for the body."""

    def __init__(self, status: int, reason: str, **extra: Any):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.extra = extra


# --- JSON forms ---------------------------------------------------------------------------------


def decimal_text(value: Decimal | None) -> str | None:
    """A Decimal as plain positional text, digits exactly as stored (no exponent)."""
    return None if value is None else format(value, "f")


def stat_text(value: Decimal | None) -> str | None:
    """A computed statistic as plain text without trailing zeros."""
    if value is None:
        return None
    return format(value.normalize(), "f")


def time_text(value: datetime | None) -> str | None:
    """An aware datetime as RFC 3339 UTC with a Z."""
    return None if value is None else value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def price_json(price: store.LatestPrice, stale_after: float) -> dict[str, Any]:
    """The price object of the API."""
    return {
        "token_key": price.token_key,
        "symbol": price.symbol,
        "price_usdt": decimal_text(price.price_usdt),
        "source": price.source,
        "observed_at": time_text(price.observed_at),
        "age_seconds": round(max(price.age_seconds, 0.0), 3),
        "stale": price.stale,
        "stale_after_seconds": stale_after,
    }


# --- requests -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    """The query parameters of one request, checked against what the route accepts."""

    values: Mapping[str, list[str]]

    @classmethod
    def parse(cls, query: str, allowed: Sequence[str]) -> Query:
        if len(query) > MAX_QUERY_LENGTH:
            raise ApiError(400, f"query string longer than {MAX_QUERY_LENGTH} characters")
        try:
            values = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=200)
        except ValueError as exc:
            raise ApiError(400, f"malformed query string: {exc}") from None
        for name, found in values.items():
            for value in (name, *found):
                check_text(value, f"parameter {name[:40]!r}")
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            accepted = ", ".join(allowed) or "none"
            raise ApiError(400, f"unknown parameter(s) {', '.join(unknown)}; this route accepts: {accepted}")
        return cls(values)

    def one(self, name: str) -> str | None:
        found = self.values.get(name)
        if not found:
            return None
        if len(found) > 1:
            raise ApiError(400, f"parameter {name} given {len(found)} times; give it once")
        if found[0] == "":  # no value is not a value: leave the parameter out for its default
            raise ApiError(400, f"parameter {name} is empty; give a value or leave it out")
        return found[0]

    def listed(self, name: str) -> list[str]:
        """A list parameter: repeated (`?tokens=a&tokens=b`) and/or comma-separated."""
        # Only spaces are trimmed here, as the document says; a reference is read as given.
        return [item.strip(" ") for value in self.values.get(name, []) for item in value.split(",") if item.strip(" ")]

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        text = self.one(name)
        if text is None:
            return default
        if not re.fullmatch(r"[0-9]{1,9}", text):
            raise ApiError(400, f"{name} must be a whole number from {low} to {high}, got {text[:40]!r}")
        value = int(text)
        if not low <= value <= high:
            raise ApiError(400, f"{name} must be from {low} to {high}, got {value}")
        return value

    def instant(self, name: str) -> datetime | None:
        text = self.one(name)
        return None if text is None else parse_instant(text, name)

    @overload
    def choice(self, name: str, options: Sequence[str], default: str) -> str: ...
    @overload
    def choice(self, name: str, options: Sequence[str], default: None) -> str | None: ...

    def choice(self, name: str, options: Sequence[str], default: str | None) -> str | None:
        """The parameter, one of `options` (400 otherwise), or `default` when absent."""
        value = self.one(name)
        if value is None:
            return default
        if value not in options:
            raise ApiError(400, f"{name} must be one of {', '.join(options)}, got {value[:40]!r}")
        return value


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, as docs/openapi.yaml states it


def check_text(value: str, what: str) -> None:
    """400 for text PostgreSQL refuses (NUL) or that no token, time or cursor contains (a control character)."""
    if "\x00" in value:
        raise ApiError(400, f"{what} contains a NUL character")
    if _CONTROL.search(value):
        raise ApiError(400, f"{what} contains a control character")


def parse_instant(text: str, name: str) -> datetime:
    """RFC 3339 with an offset, or unix seconds (up to 12 digits, up to 6 decimals), as UTC; else 400."""
    if re.fullmatch(r"[0-9]{1,12}(\.[0-9]{1,6})?", text):
        seconds = Decimal(text)
        if seconds >= Decimal(int(LATEST_TIME.timestamp())):
            raise ApiError(400, f"{name} must be before {time_text(LATEST_TIME)}, got {text!r} unix seconds")
        return EARLIEST_TIME + timedelta(seconds=int(seconds), microseconds=int(seconds % 1 * 10**6))
    try:
        value = datetime.fromisoformat(text.replace(" ", "+"))  # a '+' in a query decodes to a space
    except ValueError:
        raise ApiError(
            400, f"{name} must be an RFC 3339 time with a UTC offset or unix seconds, got {text[:40]!r}"
        ) from None
    if value.tzinfo is None:
        raise ApiError(400, f"{name} must carry a UTC offset (e.g. 2025-06-25T21:00:00Z), got {text[:40]!r}")
    return bounded_time(value, name)


def bounded_time(value: datetime, what: str) -> datetime:
    """An aware time as UTC, or 400 when it lies outside the range the API answers for."""
    try:
        utc = value.astimezone(timezone.utc)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
        utc = None
    if utc is None or not EARLIEST_TIME <= utc < LATEST_TIME:
        raise ApiError(
            400,
            f"{what} must be from {time_text(EARLIEST_TIME)} to before {time_text(LATEST_TIME)}, "
            f"got {value.isoformat()[:40]!r}",
        )
    return utc


# Cursors name the position after which the next page starts, in a documented form, so that
# every cursor of that form is a position: a token list's is `<rank>:<token key>` of its last
# item, a candle list's the `bucket_start` of its last candle.
_TOKENS_CURSOR = re.compile(rf"([0-9]{{1,10}}):(.{{1,{MAX_CURSOR_KEY}}})")


def tokens_cursor(rank: int, key: str) -> str:
    """The cursor of the token-list page that follows (rank, key)."""
    return f"{rank}:{key}"


def parse_tokens_cursor(text: str | None) -> tuple[int, str] | None:
    """The (rank, key) position a token-list cursor names; 400 if it is not of the form."""
    if not text:
        return None
    match = _TOKENS_CURSOR.fullmatch(text)
    if match is None or int(match.group(1)) > INT32_MAX:
        raise ApiError(
            400,
            f"cursor must be <rank>:<token key> (rank up to {INT32_MAX}, key up to {MAX_CURSOR_KEY} characters), "
            "as next_cursor gives it",
        )
    return int(match.group(1)), match.group(2)


# --- the API --------------------------------------------------------------------------------------

Handler = Callable[["QuotesApi", Any, Query, list[str]], tuple[int, Any]]


@dataclass(frozen=True)
class Route:
    """A GET route: a path pattern, its handler and the query parameters it accepts."""

    name: str
    pattern: re.Pattern[str]
    handler: Handler
    params: tuple[str, ...]


ROUTES: list[Route] = []


def route(name: str, path: str, params: Sequence[str] = ()) -> Callable[[Handler], Handler]:
    """Register a handler for `GET /v1<path>`; `{ref}` matches one path segment."""
    pattern = re.compile("^" + API_PREFIX + re.escape(path).replace(r"\{ref\}", "([^/]+)") + "/?$")

    def register(handler: Handler) -> Handler:
        ROUTES.append(Route(name, pattern, handler, tuple(params)))
        return handler

    return register


class QuotesApi:
    """Answers the API's GET requests from the read models, one database connection each."""

    def __init__(self, resources: Resources):
        self.resources = resources
        self.stale_after = resources.settings.price_stale_after_seconds

    def handle(self, path: str, query: str) -> HttpResponse:
        """Answer `GET path?query`."""
        started = time.monotonic()
        name = "unmatched"
        try:
            for candidate in ROUTES:
                match = candidate.pattern.match(path)
                if match:
                    name = candidate.name
                    params = Query.parse(query, candidate.params)
                    # The target comes percent-encoded (`request_target`): each segment is decoded once.
                    segments = [unquote(s) for s in match.groups()]
                    for segment in segments:
                        check_text(segment, "path segment")
                    with self.resources.db.connection() as conn:
                        status, payload = candidate.handler(self, conn, params, segments)
                    response = HttpResponse.json(status, payload, {"Cache-Control": "no-store"})
                    break
            else:
                raise ApiError(404, f"no route for GET {path}; see docs/api.md")
        except ApiError as exc:
            response = HttpResponse.json(exc.status, {"error": exc.reason, **exc.extra})
        except DependencyUnavailable as exc:
            log.warning("quotes %s: database unavailable: %s", name, exc)
            response = HttpResponse.json(503, {"error": f"database unavailable: {exc}"}, {"Retry-After": "1"})
        except Exception as exc:  # a bug: say so, keep serving
            log.exception("quotes %s failed", name)
            response = HttpResponse.json(500, {"error": f"internal error: {type(exc).__name__}"})
        labels = {"route": name, "status": str(response.status)}
        metrics.count("crawler_quotes_requests", description="Quotes API requests by route and status", **labels)
        metrics.observe(
            "crawler_quotes_request_duration",
            time.monotonic() - started,
            description="Quotes API request duration",
            route=name,
        )
        return response

    # --- helpers ---------------------------------------------------------------------------------

    def resolve(self, conn: Any, ref: str) -> str:
        """The token key of one reference, or the 400/404/409 that says why not."""
        try:
            parsed = reads.parse_ref(ref)
        except reads.BadReference as exc:
            raise ApiError(400, str(exc), token=ref) from None
        found = reads.resolve_refs(conn, [parsed])[parsed.ref]
        if found.token_key is None:
            extra = {"candidates": list(found.candidates)} if found.candidates else {}
            raise ApiError(found.status, found.reason, token=ref, **extra)
        return found.token_key

    def resolve_many(self, conn: Any, params: Query) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
        """(reference, token key) pairs in request order, and an error object per unresolved one."""
        given = params.values.get("tokens", [])
        if sum(len(v) for v in given) > MAX_TOKENS_TEXT:
            raise ApiError(400, f"tokens longer than {MAX_TOKENS_TEXT} characters")
        items = params.listed("tokens")
        refs = list(dict.fromkeys(items))
        if not refs:
            raise ApiError(
                400,
                "tokens is required: token keys, <chain>:<address> contracts or symbols, comma-separated or repeated",
            )
        if len(items) > MAX_TOKENS_PER_REQUEST:  # counted as given: a repeat is an item too
            raise ApiError(400, f"at most {MAX_TOKENS_PER_REQUEST} tokens per request, got {len(items)}")
        parsed, errors = [], []
        for ref in refs:
            try:
                parsed.append(reads.parse_ref(ref))
            except reads.BadReference as exc:
                errors.append({"token": ref, "status": 400, "error": str(exc)})
        resolved = reads.resolve_refs(conn, parsed)
        pairs = []
        for p in parsed:
            found = resolved[p.ref]
            if found.token_key is None:
                error = {"token": p.ref, "status": found.status, "error": found.reason}
                if found.candidates:
                    error["candidates"] = list(found.candidates)
                errors.append(error)
            else:
                pairs.append((p.ref, found.token_key))
        return pairs, errors

    def kpis_json(self, kpi: gold.Kpis) -> dict[str, Any]:
        age = (kpi.as_of - kpi.observed_at).total_seconds()
        return {
            "token_key": kpi.token_key,
            "price_usdt": decimal_text(kpi.price_usdt),
            "observed_at": time_text(kpi.observed_at),
            "stale": age > self.stale_after,
            "as_of": time_text(kpi.as_of),
            "window_start": time_text(kpi.window_start),
            "open_24h": decimal_text(kpi.open_24h),
            "open_24h_at": time_text(kpi.open_24h_at),
            "change_24h": decimal_text(kpi.change_24h),
            "change_pct_24h": decimal_text(kpi.change_pct_24h),
            "high_24h": decimal_text(kpi.high_24h),
            "low_24h": decimal_text(kpi.low_24h),
            "ticks_24h": kpi.ticks_24h,
        }


# --- routes ---------------------------------------------------------------------------------------


@route("prices", "/prices", params=("tokens",))
def _prices(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    pairs, errors = api.resolve_many(conn, params)
    latest = store.latest_prices(conn, [key for _, key in pairs], api.stale_after)
    prices = []
    for ref, key in pairs:
        if key in latest:
            prices.append({"token": ref, **price_json(latest[key], api.stale_after)})
        else:
            errors.append({"token": ref, "status": 404, "error": f"no price yet for {key}", "token_key": key})
    return 200, {"prices": prices, "errors": errors}


@route("price", "/prices/{ref}")
def _price(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    ref = segments[0]
    key = api.resolve(conn, ref)
    latest = store.latest_prices(conn, [key], api.stale_after).get(key)
    if latest is None:
        raise ApiError(404, f"no price yet for {key}", token=ref, token_key=key)
    return 200, {"token": ref, **price_json(latest, api.stale_after)}


@route("tokens", "/tokens", params=("set", "limit", "cursor"))
def _tokens(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    token_set = params.choice("set", TOKEN_SETS, None)
    limit = params.integer("limit", DEFAULT_TOKEN_LIMIT, 1, MAX_PAGE_SIZE)
    after = parse_tokens_cursor(params.one("cursor"))
    rows = reads.list_tokens(conn, token_set, after=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    items = [
        {
            "token_key": t.token_key,
            "symbol": t.symbol,
            "name": t.name,
            "chain": t.chain,
            "contract": t.contract,
            "rank": t.rank,
            "market_cap_usd": decimal_text(t.market_cap_usd),
            "price_usdt": decimal_text(t.price_usdt),
            "observed_at": time_text(t.observed_at),
        }
        for t in page
    ]
    next_cursor = tokens_cursor(page[-1].sort_rank, page[-1].token_key) if more else None
    return 200, {"set": token_set, "tokens": items, "next_cursor": next_cursor}


@route("token", "/tokens/{ref}")
def _token(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    ref = segments[0]
    key = api.resolve(conn, ref)
    found = reads.profile(conn, key)
    if found is None:  # deleted between the two reads
        raise ApiError(404, f"unknown token {key}", token=ref)
    latest = store.latest_prices(conn, [key], api.stale_after).get(key)
    audits = [
        {
            "provider": a.provider,
            "score": decimal_text(a.score),
            "is_verified": a.is_verified,
            "is_honeypot": a.is_honeypot,
            "buy_tax": decimal_text(a.buy_tax),
            "sell_tax": decimal_text(a.sell_tax),
            "report_url": a.report_url,
            "audited_at": time_text(a.audited_at),
            "flags": a.flags,
        }
        for a in found.audits
    ]
    return 200, {
        "token": ref,
        "token_key": found.token_key,
        "symbol": found.symbol,
        "name": found.name,
        "chain": found.chain,
        "contract": found.contract,
        "decimals": found.decimals,
        "logo_url": found.logo_url,
        "contracts": found.contracts,
        "websites": found.websites,
        "socials": found.socials,
        "tags": found.tags,
        "coingecko_id": found.coingecko_id,
        "market_cap_usd": decimal_text(found.market_cap_usd),
        "market_cap_rank": found.market_cap_rank,
        "main_pool": found.main_pool,
        "is_stablecoin": found.is_stablecoin,
        "source": found.source,
        "first_seen_at": time_text(found.first_seen_at),
        "last_updated_at": time_text(found.last_updated_at),
        "sets": found.sets,
        "price": price_json(latest, api.stale_after) if latest else None,
        "audit": audits[0] if audits else None,
        "audits": audits,
    }


@route("candles", "/tokens/{ref}/candles", params=("resolution", "from", "to", "limit", "cursor"))
def _candles(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    resolution = params.choice("resolution", tuple(gold.RESOLUTIONS), "1m")
    width = gold.resolution_width(resolution)
    limit = params.integer("limit", DEFAULT_CANDLE_LIMIT, 1, MAX_PAGE_SIZE)
    now = datetime.now(timezone.utc)
    end = params.instant("to") or now
    start = params.instant("from") or end - width * limit
    after = params.instant("cursor")
    key = api.resolve(conn, segments[0])
    # [from, to) with from at or after to is the empty window: no candles, not an error.
    rows = (
        gold.candles(conn, key, resolution, start=start, end=end, after=after, limit=limit + 1) if start < end else []
    )
    page, more = rows[:limit], len(rows) > limit
    return 200, {
        "token_key": key,
        "resolution": resolution,
        "from": time_text(start),
        "to": time_text(end),
        "candles": [
            {
                "bucket_start": time_text(c.bucket_start),
                "open": decimal_text(c.open),
                "high": decimal_text(c.high),
                "low": decimal_text(c.low),
                "close": decimal_text(c.close),
                "open_at": time_text(c.open_at),
                "close_at": time_text(c.close_at),
                "ticks": c.ticks,
                "complete": c.bucket_start + width <= now,
            }
            for c in page
        ],
        "next_cursor": time_text(page[-1].bucket_start) if more else None,
    }


@route("kpis", "/kpis", params=("tokens",))
def _kpis_many(api: QuotesApi, conn: Any, params: Query, _: list[str]) -> tuple[int, Any]:
    pairs, errors = api.resolve_many(conn, params)
    found = gold.kpis(conn, [key for _, key in pairs])
    items = []
    for ref, key in pairs:
        if key in found:
            items.append({"token": ref, **api.kpis_json(found[key])})
        else:
            errors.append({"token": ref, "status": 404, "error": f"no price yet for {key}", "token_key": key})
    return 200, {"kpis": items, "errors": errors}


@route("token_kpis", "/tokens/{ref}/kpis")
def _kpis(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    ref = segments[0]
    key = api.resolve(conn, ref)
    found = gold.kpis(conn, [key]).get(key)
    if found is None:
        raise ApiError(404, f"no price yet for {key}", token=ref, token_key=key)
    return 200, {"token": ref, **api.kpis_json(found)}


@route("volatility", "/tokens/{ref}/volatility", params=("resolution", "periods"))
def _volatility(api: QuotesApi, conn: Any, params: Query, segments: list[str]) -> tuple[int, Any]:
    resolution = params.choice("resolution", tuple(gold.RESOLUTIONS), "1h")
    periods = params.integer("periods", 24, 2, MAX_VOLATILITY_PERIODS)
    ref = segments[0]
    key = api.resolve(conn, ref)
    v = gold.volatility(conn, key, resolution, periods)
    return 200, {
        "token": ref,
        "token_key": key,
        "resolution": resolution,
        "periods": periods,
        "window_start": time_text(v.window_start),
        "as_of": time_text(v.as_of),
        "samples": v.samples,
        "mean": stat_text(v.mean),
        "stddev": stat_text(v.stddev),
        "relative": stat_text(v.relative),
        "returns_stddev": stat_text(v.returns_stddev),
    }


# The stats system's read routes (`/v1/stats/...`) register themselves on import; a block of their own.
from shared.crawler.quotes import stats_routes  # noqa: E402,F401

# The stock system's routes (/v1/stocks/...) register themselves in ROUTES beside these.
from shared.stocks import api as _stock_routes  # noqa: E402, F401
