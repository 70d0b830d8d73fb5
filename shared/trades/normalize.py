"""Pure normalisers: every source's record of a trade into one `Fill` (or a manual round trip).

Sources (samples in tests/fixtures/upstream/, INDEX.md there):

| source                         | normaliser                   | identity (external id)                   |
|--------------------------------|------------------------------|------------------------------------------|
| manual entry (POST /api/trades) | `manual_entry`               | the client's idempotency key             |
| CSV row                        | `csv_row`                    | `row:<n>` of the file digest, or the row's exchange trade id |
| Binance GET /api/v3/myTrades   | `binance_my_trade`           | `id` (trade id) within the account       |
| Binance executionReport        | `binance_execution_report`   | `t` (trade id); only `x=TRADE` is a fill |
| Bybit v5 /v5/execution/list    | `bybit_execution_list`       | `execId`; only `execType=Trade` is a fill |
| Bybit v5 WS `execution` topic  | `bybit_ws_execution`         | `execId`, the same fills as REST         |

Every number goes through the platform's bounded parser (`shared.wire`), so a price is an
exact Decimal or the row is rejected: NaN, 1e400, 10**6 digits and floats never become a
fill. Every failure is a `TradeRejected` naming the field; nothing else is raised for
any input (tests/unit/test_trade_normalize_properties.py). Binance's and Bybit's ids,
times and symbols are read as their samples show them (ids integers or strings, times
integer or string milliseconds, prices strings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any

from shared.errors import BadWireValue
from shared.trades.errors import TradeRejected
from shared.trades.models import Fill, Side, Source, Trade, derived_id
from shared.trades.pairing import round_trip_pnl, sum_fees
from shared.wire import MAX_NUMBER_TEXT_CHARS, to_decimal, wire_decimal

# Times a trade may carry: none before this, none later than the moment it was received
# plus the clock skew the caller allows (a fill from the future is a wrong clock or a lie).
EARLIEST_TRADE_TIME = datetime(2000, 1, 1, tzinfo=timezone.utc)
DEFAULT_CLOCK_SKEW = timedelta(minutes=5)
MAX_NOTES_CHARS = 2000
MAX_ID_CHARS = 128
MAX_ACCOUNT_CHARS = 128
# A symbol as traders and exchanges write it: letters and digits, with '.' kept (BRK.B);
# '/', '-', '_' and spaces are separators and dropped, so BTC/USDT, BTC-USDT and BTCUSDT
# are one symbol (FIFO pairing is per symbol).
MAX_SYMBOL_CHARS = 40
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9.]*")
_SYMBOL_SEPARATORS = re.compile(r"[/\-_ ]")
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_ASSET = re.compile(r"[A-Z0-9]{1,20}")
_SIDES = {"buy": Side.BUY, "sell": Side.SELL, "b": Side.BUY, "s": Side.SELL}


@dataclass(frozen=True, slots=True)
class Received:
    """Who a record belongs to and when it arrived: the context every normaliser is given.

    `user_id` comes from the caller's authenticated token (or the linked account), never
    from the record itself; `account` is the linked exchange account's label.
    """

    user_id: str
    received_at: datetime
    account: str = "default"
    clock_skew: timedelta = DEFAULT_CLOCK_SKEW


# --- fields ---------------------------------------------------------------------------------


def text_field(value: Any, field: str, *, max_chars: int, required: bool = True) -> str | None:
    """A string field, stripped; None when absent and not required. Control characters refused."""
    if value is None or value == "":
        if required:
            raise TradeRejected(field, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TradeRejected(field, f"must be a string, got {_json_type(value)}")
    if isinstance(value, int):
        if abs(value) >= 10**MAX_ID_CHARS:
            raise TradeRejected(field, f"longer than {max_chars} characters")
        value = str(value)
    if len(value) > max_chars:
        raise TradeRejected(field, f"longer than {max_chars} characters")
    stripped = value.strip()
    if _CONTROL.search(stripped):
        raise TradeRejected(field, "contains a control character")
    if not stripped:
        if required:
            raise TradeRejected(field, "is required")
        return None
    return stripped


def notes_field(value: Any) -> str | None:
    """Free text of the trader's (tabs and line breaks allowed, other control characters not)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TradeRejected("notes", f"must be a string, got {_json_type(value)}")
    if len(value) > MAX_NOTES_CHARS:
        raise TradeRejected("notes", f"longer than {MAX_NOTES_CHARS} characters")
    if _CONTROL.search(value.replace("\n", "").replace("\r", "").replace("\t", "")):
        raise TradeRejected("notes", "contains a control character")
    return value.strip() or None


def symbol_field(value: Any, field: str = "symbol") -> str:
    """The canonical symbol: upper-case, separators dropped (`btc/usdt` → `BTCUSDT`)."""
    raw = text_field(value, field, max_chars=MAX_SYMBOL_CHARS * 2)
    assert raw is not None
    symbol = _SYMBOL_SEPARATORS.sub("", raw.upper())
    if not symbol or len(symbol) > MAX_SYMBOL_CHARS or not _SYMBOL.fullmatch(symbol):
        raise TradeRejected(field, f"must be letters and digits (e.g. BTCUSDT or BTC/USDT), got {raw[:40]!r}")
    return symbol


def asset_field(value: Any, field: str) -> str | None:
    """An asset name (BNB, USDT), upper-case; None when absent."""
    raw = text_field(value, field, max_chars=40, required=False)
    if raw is None:
        return None
    asset = raw.upper()
    if not _ASSET.fullmatch(asset):
        raise TradeRejected(field, f"must be an asset name such as USDT, got {raw[:40]!r}")
    return asset


def side_field(value: Any, field: str = "side") -> Side:
    """BUY or SELL, in any case (Bybit writes Buy/Sell); B/S accepted."""
    if isinstance(value, str) and value.strip().lower() in _SIDES:
        return _SIDES[value.strip().lower()]
    shown = value[:20] if isinstance(value, str) else _json_type(value)
    raise TradeRejected(field, f"must be BUY or SELL, got {shown!r}")


def decimal_field(
    value: Any, field: str, *, positive: bool = True, required: bool = True, signed: bool = False
) -> Decimal | None:
    """An exact, bounded number (a JSON number or numeric string): > 0 when `positive`, else >= 0
    (any sign when `signed`)."""
    if value is None or value == "":
        if required:
            raise TradeRejected(field, "is required")
        return None
    if isinstance(value, float):  # only a JSON decoder without parse_float=Decimal makes these
        raise TradeRejected(field, "must be an exact decimal (JSON number or string), not a binary float")
    try:
        number = to_decimal(value, field)
    except BadWireValue as exc:
        raise TradeRejected(field, exc.limit) from None
    if number is None:
        shown = value[:24] if isinstance(value, str) else _json_type(value)
        raise TradeRejected(field, f"must be a decimal number, got {shown!r}")
    if positive and number <= 0:
        raise TradeRejected(field, f"must be greater than 0, got {number}")
    if not positive and not signed and number < 0:
        raise TradeRejected(field, f"must not be negative, got {number}")
    return number


def millis_field(value: Any, field: str, received: Received) -> datetime:
    """A UTC time from Unix milliseconds (int, or string as Bybit sends it), exactly."""
    if isinstance(value, bool) or value is None or value == "":
        raise TradeRejected(field, "is required (Unix milliseconds)")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]{1,15}", value.strip()):
        raise TradeRejected(field, f"must be Unix milliseconds, got {value[:24]!r}")
    if not isinstance(value, (int, str)):
        raise TradeRejected(field, f"must be Unix milliseconds, got {_json_type(value)}")
    millis = int(value)
    if not 0 < millis < 10**15:
        raise TradeRejected(field, f"must be Unix milliseconds, got {millis}")
    moment = datetime(1970, 1, 1, tzinfo=timezone.utc) + timedelta(milliseconds=millis)
    return bounded_time(moment, field, received)


def iso_field(value: Any, field: str, received: Received, *, zone: tzinfo | None = None) -> datetime:
    """A time from ISO-8601 text (or Unix milliseconds); a time without offset needs `zone`."""
    if isinstance(value, int) and not isinstance(value, bool):
        return millis_field(value, field, received)
    raw = text_field(value, field, max_chars=64)
    assert raw is not None
    if re.fullmatch(r"[0-9]{12,15}", raw):
        return millis_field(raw, field, received)
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise TradeRejected(field, f"must be an ISO-8601 time such as 2025-06-25T21:00:00Z, got {raw[:40]!r}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        if zone is None:
            raise TradeRejected(
                field, f"has no UTC offset ({raw[:40]!r}); add one (e.g. Z) or name the file's timezone"
            )
        moment = moment.replace(tzinfo=zone)
    try:
        utc = moment.astimezone(timezone.utc)
    except (OverflowError, ValueError):
        raise TradeRejected(field, f"is outside the range of times, got {raw[:40]!r}") from None
    return bounded_time(utc, field, received)


def bounded_time(moment: datetime, field: str, received: Received) -> datetime:
    """`moment` truncated to the millisecond, or rejected when before 2000 or in the future."""
    moment = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if moment < EARLIEST_TRADE_TIME:
        raise TradeRejected(field, f"is before {EARLIEST_TRADE_TIME.date()}: {moment.isoformat()}")
    if moment > received.received_at + received.clock_skew:
        raise TradeRejected(
            field, f"is in the future: {moment.isoformat()} (received {received.received_at.isoformat()})"
        )
    return moment


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (int, Decimal)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise TradeRejected("", f"{what} must be a JSON object, got {_json_type(value)}")
    return value


def _optional_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


# --- manual entry ---------------------------------------------------------------------------

MANUAL_FIELDS = frozenset(
    {
        "client_trade_id",
        "symbol",
        "side",
        "price",
        "entry_price",
        "quantity",
        "executed_at",
        "entry_time",
        "exit_price",
        "exit_time",
        "fee",
        "fee_asset",
        "notes",
    }
)


def manual_entry(payload: Any, received: Received, idempotency_key: str) -> Fill | Trade:
    """A trade typed by hand: a fill, or a complete round trip when it names its exit.

    Fields: symbol, side, price (or entry_price), quantity, executed_at (or entry_time),
    optional fee/fee_asset/notes, and optionally exit_price with exit_time: a round trip the
    trader closed, recorded as given (pnl computed) and never paired with other fills.
    `idempotency_key` is the client's key of this trade (the Idempotency-Key header, or its
    `client_trade_id`): the same key is the same trade.
    """
    item = _object(payload, "a trade")
    unknown = sorted(str(k)[:40] for k in item if k not in MANUAL_FIELDS)
    if unknown:
        raise TradeRejected(unknown[0], f"unknown field; a trade has {', '.join(sorted(MANUAL_FIELDS))}")
    key = text_field(idempotency_key, "client_trade_id", max_chars=MAX_ID_CHARS)
    assert key is not None
    for new, old in (("price", "entry_price"), ("executed_at", "entry_time")):
        if new in item and old in item:
            raise TradeRejected(old, f"give {new} or {old}, not both")
    symbol = symbol_field(item.get("symbol"))
    side = side_field(item.get("side"))
    price_field = "entry_price" if "entry_price" in item else "price"
    price = decimal_field(item.get(price_field), price_field)
    quantity = decimal_field(item.get("quantity"), "quantity")
    time_field = "entry_time" if "entry_time" in item else "executed_at"
    executed_at = iso_field(item.get(time_field), time_field, received)
    fee = decimal_field(item.get("fee"), "fee", positive=False, required=False) or Decimal(0)
    fee_asset = asset_field(item.get("fee_asset"), "fee_asset")
    notes = notes_field(item.get("notes"))
    assert price is not None and quantity is not None
    has_exit = item.get("exit_price") not in (None, "") or item.get("exit_time") not in (None, "")
    if not has_exit:
        return Fill(
            user_id=received.user_id,
            source=Source.MANUAL,
            account="manual",
            external_id=key,
            symbol=symbol,
            side=side,
            price=price,
            quantity=quantity,
            executed_at=executed_at,
            fee=fee,
            fee_asset=fee_asset,
            notes=notes,
            origin="manual",
        )
    exit_price = decimal_field(item.get("exit_price"), "exit_price")
    exit_time = iso_field(item.get("exit_time"), "exit_time", received)
    assert exit_price is not None
    if exit_time < executed_at:
        raise TradeRejected("exit_time", "is before the entry time")
    fees = (fee_asset, fee)
    return Trade(
        trade_id=derived_id("manual-round-trip", received.user_id, key),
        user_id=received.user_id,
        symbol=symbol,
        side=side,
        entry_price=price,
        quantity=quantity,
        entry_time=executed_at,
        source=Source.MANUAL,
        exit_price=exit_price,
        exit_time=exit_time,
        pnl=round_trip_pnl(side, price, exit_price, quantity, [fees], symbol),
        notes=notes,
        fees=sum_fees([fees]),
    )


# --- CSV rows -------------------------------------------------------------------------------

# Header names a CSV may use for each field (compared lower-case, spaces and '_' removed).
CSV_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "executed_at": ("executedat", "time", "date", "datetime", "timestamp", "dateutc", "date(utc)", "tradetime"),
    "symbol": ("symbol", "pair", "market", "instrument", "ticker"),
    "side": ("side", "type", "direction", "action"),
    "price": ("price", "executionprice", "execprice", "avgprice", "fillprice"),
    "quantity": ("quantity", "qty", "amount", "size", "executed", "filled", "execqty"),
    "fee": ("fee", "commission", "fees", "execfee"),
    "fee_asset": ("feeasset", "commissionasset", "feecurrency", "feecoin"),
    "exchange": ("exchange", "venue", "broker"),
    "account": ("account", "accountid", "subaccount"),
    "exchange_trade_id": ("exchangetradeid", "tradeid", "execid", "fillid"),
    "notes": ("notes", "note", "comment", "memo"),
}
CSV_REQUIRED = ("executed_at", "symbol", "side", "price", "quantity")
_CSV_EXCHANGES = {"binance": Source.BINANCE, "bybit": Source.BYBIT}


def csv_header_key(name: str) -> str:
    """A header cell as compared against `CSV_COLUMNS` (BOM, case, spaces and '_' ignored)."""
    return name.lstrip("\ufeff").strip().lower().replace(" ", "").replace("_", "")


def csv_column_map(header: list[str]) -> dict[str, int]:
    """Field → column index of a CSV header; `TradeRejected` naming what is missing or doubled."""
    found: dict[str, int] = {}
    for index, cell in enumerate(header):
        key = csv_header_key(cell)
        for name, aliases in CSV_COLUMNS.items():
            if key in aliases:
                if name in found:
                    raise TradeRejected(name, f"two columns name it: {header[found[name]]!r} and {cell!r}")
                found[name] = index
    missing = [name for name in CSV_REQUIRED if name not in found]
    if missing:
        raise TradeRejected(missing[0], f"no column for {', '.join(missing)} in the header {header[:20]!r}")
    return found


def csv_number(text: str, field: str, *, decimal_comma: bool, positive: bool = True) -> Decimal | None:
    """A CSV cell's number: '.' decimals, or ',' decimals when the file says so.

    A comma in a '.'-decimal file is refused, never guessed: "1,500" is 1.5 in one locale and
    1500 in another. Spaces (thousands in many locales) are removed.
    """
    cell = text.strip().replace(" ", "").replace("\u00a0", "")
    if not cell:
        return None
    if decimal_comma:
        if "." in cell:
            raise TradeRejected(field, f"has a '.' but the file uses decimal commas: {cell[:24]!r}")
        cell = cell.replace(",", ".")
    elif "," in cell:
        raise TradeRejected(field, f"has a ',' ({cell[:24]!r}): say the file uses decimal commas, or remove it")
    if len(cell) > MAX_NUMBER_TEXT_CHARS:
        raise TradeRejected(field, f"longer than {MAX_NUMBER_TEXT_CHARS} characters")
    try:
        number = wire_decimal(cell, field)
    except BadWireValue as exc:
        raise TradeRejected(field, exc.limit) from None
    if number is None:
        raise TradeRejected(field, f"must be a decimal number, got {cell[:24]!r}")
    return decimal_field(number, field, positive=positive)


def csv_row(
    cells: list[str],
    columns: Mapping[str, int],
    received: Received,
    *,
    file_digest: str,
    row_number: int,
    zone: tzinfo | None = None,
    decimal_comma: bool = False,
) -> Fill:
    """One data row of a trade-history CSV (`columns` from `csv_column_map`).

    Identity: (file digest, row number) — re-importing the same file adds nothing — unless
    the row names an exchange (binance, bybit) and its trade id: then the exchange fill's own
    identity, so the same fill synced from the exchange is not counted twice.
    """
    if len(cells) < max(columns.values()) + 1:
        raise TradeRejected("", f"has {len(cells)} columns, the header names {max(columns.values()) + 1}")

    def cell(name: str) -> str:
        index = columns.get(name)
        return cells[index] if index is not None else ""

    symbol = symbol_field(cell("symbol"))
    side = side_field(cell("side"))
    price = csv_number(cell("price"), "price", decimal_comma=decimal_comma)
    quantity = csv_number(cell("quantity"), "quantity", decimal_comma=decimal_comma)
    if price is None or quantity is None:
        raise TradeRejected("price" if price is None else "quantity", "is required")
    executed_at = iso_field(cell("executed_at"), "executed_at", received, zone=zone)
    fee = csv_number(cell("fee"), "fee", decimal_comma=decimal_comma, positive=False) or Decimal(0)
    fee_asset = asset_field(cell("fee_asset"), "fee_asset")
    notes = notes_field(cell("notes"))
    exchange_name = text_field(cell("exchange"), "exchange", max_chars=40, required=False)
    trade_id = text_field(cell("exchange_trade_id"), "exchange_trade_id", max_chars=MAX_ID_CHARS, required=False)
    source, account, external_id = Source.CSV, file_digest, f"row:{row_number}"
    if trade_id is not None:
        exchange = _CSV_EXCHANGES.get((exchange_name or "").lower())
        if exchange is None:
            raise TradeRejected(
                "exchange", f"must be one of {', '.join(sorted(_CSV_EXCHANGES))} when the row names a trade id"
            )
        source, external_id = exchange, trade_id
        account = (
            text_field(cell("account"), "account", max_chars=MAX_ACCOUNT_CHARS, required=False) or received.account
        )
    return Fill(
        user_id=received.user_id,
        source=source,
        account=account,
        external_id=external_id,
        symbol=symbol,
        side=side,
        price=price,
        quantity=quantity,
        executed_at=executed_at,
        fee=fee,
        fee_asset=fee_asset,
        notes=notes,
        origin="csv",
    )


# --- Binance --------------------------------------------------------------------------------


def binance_my_trade(item: Any, received: Received) -> Fill:
    """One element of GET /api/v3/myTrades: `isBuyer` gives the side, `id` the trade id."""
    row = _object(item, "a myTrades element")
    is_buyer = row.get("isBuyer")
    if not isinstance(is_buyer, bool):
        raise TradeRejected("isBuyer", f"must be a boolean, got {_json_type(is_buyer)}")
    return Fill(
        user_id=received.user_id,
        source=Source.BINANCE,
        account=received.account,
        external_id=_exchange_id(row.get("id"), "id"),
        symbol=symbol_field(row.get("symbol")),
        side=Side.BUY if is_buyer else Side.SELL,
        price=_required(decimal_field(row.get("price"), "price")),
        quantity=_required(decimal_field(row.get("qty"), "qty")),
        executed_at=millis_field(row.get("time"), "time", received),
        fee=decimal_field(row.get("commission"), "commission", positive=False, required=False) or Decimal(0),
        fee_asset=asset_field(row.get("commissionAsset"), "commissionAsset"),
        order_id=_optional_id(row.get("orderId"), "orderId"),
        is_maker=_optional_bool(row.get("isMaker")),
        origin="binance.myTrades",
    )


def binance_execution_report(frame: Any, received: Received) -> Fill | None:
    """A user-data `executionReport`, bare or wrapped as the WS API sends it ({subscriptionId, event}).

    Only `x=TRADE` is a fill (l/L = last fill quantity/price, t = trade id, n/N = its
    commission, T = transaction time); NEW, CANCELED, EXPIRED, ... reports are None.
    """
    event = _object(frame, "an executionReport")
    if "event" in event and "e" not in event:
        event = _object(event["event"], "the event of a user data frame")
    if event.get("e") != "executionReport":
        raise TradeRejected("e", f"must be executionReport, got {str(event.get('e'))[:40]!r}")
    if event.get("x") != "TRADE":
        return None
    return Fill(
        user_id=received.user_id,
        source=Source.BINANCE,
        account=received.account,
        external_id=_exchange_id(event.get("t"), "t"),
        symbol=symbol_field(event.get("s"), "s"),
        side=side_field(event.get("S"), "S"),
        price=_required(decimal_field(event.get("L"), "L")),
        quantity=_required(decimal_field(event.get("l"), "l")),
        executed_at=millis_field(event.get("T"), "T", received),
        fee=decimal_field(event.get("n"), "n", positive=False, required=False) or Decimal(0),
        fee_asset=asset_field(event.get("N"), "N"),
        order_id=_optional_id(event.get("i"), "i"),
        is_maker=_optional_bool(event.get("m")),
        origin="binance.executionReport",
    )


# --- Bybit v5 -------------------------------------------------------------------------------


def bybit_execution(item: Any, received: Received) -> Fill | None:
    """One execution of Bybit v5 (REST list element or WS `execution` data element).

    Only `execType=Trade` is a fill; Funding, AdlTrade, BustTrade, Settle, ... are None.
    """
    row = _object(item, "a Bybit execution")
    if row.get("execType") != "Trade":
        return None
    fee_asset = asset_field(row.get("feeCurrency"), "feeCurrency")
    return Fill(
        user_id=received.user_id,
        source=Source.BYBIT,
        account=received.account,
        external_id=_exchange_id(row.get("execId"), "execId"),
        symbol=symbol_field(row.get("symbol")),
        side=side_field(row.get("side")),
        price=_required(decimal_field(row.get("execPrice"), "execPrice")),
        quantity=_required(decimal_field(row.get("execQty"), "execQty")),
        executed_at=millis_field(row.get("execTime"), "execTime", received),
        # A rebate (maker fee below zero) is a fee of its own sign: kept exact, not refused.
        fee=_bybit_fee(row.get("execFee")),
        fee_asset=fee_asset,
        order_id=_optional_id(row.get("orderId"), "orderId"),
        is_maker=_optional_bool(row.get("isMaker")),
        origin="bybit.execution",
    )


def bybit_execution_list(body: Any, received: Received) -> list[Fill]:
    """The fills of a GET /v5/execution/list answer (retCode 0 required)."""
    doc = _object(body, "a Bybit answer")
    if doc.get("retCode") != 0:
        raise TradeRejected("retCode", f"Bybit answered {str(doc.get('retCode'))[:20]}: {str(doc.get('retMsg'))[:200]}")
    result = _object(doc.get("result"), "result")
    return _bybit_fills(result.get("list"), received)


def bybit_ws_execution(frame: Any, received: Received) -> list[Fill]:
    """The fills of a private WS frame of topic `execution` (or `execution.<category>`)."""
    doc = _object(frame, "a Bybit WS frame")
    topic = doc.get("topic")
    if not isinstance(topic, str) or not (topic == "execution" or topic.startswith("execution.")):
        raise TradeRejected("topic", f"must be execution, got {str(topic)[:40]!r}")
    return _bybit_fills(doc.get("data"), received)


def _bybit_fills(items: Any, received: Received) -> list[Fill]:
    if not isinstance(items, list):
        raise TradeRejected("list", f"must be an array, got {_json_type(items)}")
    fills = []
    for index, item in enumerate(items):
        try:
            fill = bybit_execution(item, received)
        except TradeRejected as exc:
            raise TradeRejected(f"[{index}].{exc.field}" if exc.field else f"[{index}]", exc.detail) from None
        if fill is not None:
            fills.append(fill)
    return fills


def _bybit_fee(value: Any) -> Decimal:
    return decimal_field(value, "execFee", positive=False, required=False, signed=True) or Decimal(0)


# --- ids --------------------------------------------------------------------------------------


def _exchange_id(value: Any, field: str) -> str:
    """An exchange's id of a fill: a non-negative integer or a non-empty string."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise TradeRejected(field, f"must be a trade id, got {value} (no trade)")
    result = text_field(value, field, max_chars=MAX_ID_CHARS)
    assert result is not None
    return result


def _optional_id(value: Any, field: str) -> str | None:
    if value is None or value == "" or (isinstance(value, int) and not isinstance(value, bool) and value < 0):
        return None
    return text_field(value, field, max_chars=MAX_ID_CHARS, required=False)


def _required(value: Decimal | None) -> Decimal:
    assert value is not None  # decimal_field(required=True) never returns None
    return value
