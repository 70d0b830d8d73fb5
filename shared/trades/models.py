"""The trade system's domain records: a `Fill` (one execution) and a `Trade` (the original record).

Exchanges report fills; a trader thinks in round trips. A `Fill` is one execution of one
side at one price, from any source; `shared.trades.pairing` pairs a (user, symbol)'s fills
FIFO into `Trade`s, the original `Trade` record of the specification (trade_id, user_id,
symbol, side, entry_price, exit_price, quantity, entry_time, exit_time, pnl, notes, source)
plus its fees and the fills it came from. Money is `Decimal`, times are UTC `datetime`s
truncated to the millisecond (the exchanges' resolution and the wire's).

Identity (DESIGN.md §9): a fill is identified by (user, source, account, external id):
an exchange fill by its exchange trade id within the linked account, a manual entry by the
client's idempotency key, a CSV row by (file digest, row number) unless the row names an
exchange trade id (then by that id, so an exchange history imported by CSV and the same
fills synced from the exchange are one fill). `fill_id` is a UUID derived from that
identity, so every replica and every retry computes the same id.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

# The namespace of every UUID this system derives (uuid5 of a JSON array of the identity).
TRADES_NAMESPACE = uuid.UUID("8f6c2a4e-5b1d-4c7a-9e0f-3d2b1a6c8e71")


class Side(StrEnum):
    """BUY or SELL: the side of a fill, or of a trade's entry."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class Source(StrEnum):
    """Where a trade came from (the record's `source`)."""

    MANUAL = "manual"
    CSV = "csv"
    BINANCE = "binance"
    BYBIT = "bybit"


def derived_id(*parts: str) -> str:
    """A UUID derived from `parts`: the same parts give the same id on every machine.

    The parts are joined as a JSON array, so ("a|b", "c") and ("a", "b|c") never collide.
    """
    return str(uuid.uuid5(TRADES_NAMESPACE, json.dumps(list(parts), ensure_ascii=False)))


def fill_identity_id(user_id: str, source: str, account: str, external_id: str) -> str:
    """The `fill_id` of the fill identified by (user, source, account, external id)."""
    return derived_id("fill", user_id, source, account, external_id)


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution: `quantity` of `symbol` bought or sold at `price`, with its fee.

    `origin` names the normaliser that read it (`binance.myTrades`, `csv`, ...), `raw_ref`
    where its raw record is (the raw-trades event id), for an audit trail.
    """

    user_id: str
    source: Source
    account: str
    external_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    executed_at: datetime
    fee: Decimal = Decimal(0)
    fee_asset: str | None = None
    order_id: str | None = None
    is_maker: bool | None = None
    notes: str | None = None
    origin: str = ""

    @property
    def fill_id(self) -> str:
        return fill_identity_id(self.user_id, self.source.value, self.account, self.external_id)


@dataclass(frozen=True, slots=True)
class FeeAmount:
    """A fee in the asset it was charged in (BNB on Binance, the quote asset, ...)."""

    asset: str | None
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Trade:
    """The original `Trade` record: a position's entry and, once closed, its exit and pnl.

    `side` is the entry's side (BUY = long, SELL = short). An open trade has no exit, pnl
    or exit fill; its `quantity` is what is still open. `pnl` is in the symbol's quote
    asset: (exit − entry) × quantity for a long, (entry − exit) × quantity for a short,
    minus the fees charged in the quote asset (or in no named asset); fees in another asset
    (BNB) are listed in `fees` and not deducted.
    """

    trade_id: str
    user_id: str
    symbol: str
    side: Side
    entry_price: Decimal
    quantity: Decimal
    entry_time: datetime
    source: Source
    exit_price: Decimal | None = None
    exit_time: datetime | None = None
    pnl: Decimal | None = None
    notes: str | None = None
    fees: tuple[FeeAmount, ...] = field(default_factory=tuple)
    entry_fill_id: str | None = None
    exit_fill_id: str | None = None

    @property
    def status(self) -> str:
        """open (no exit yet) or closed."""
        return "open" if self.exit_time is None else "closed"
