"""FIFO pairing: a (user, symbol)'s fills into the original entry/exit/pnl `Trade` records.

The rule (docs/trades.md, "Pairing"):

1. A user's fills of one symbol are taken in time order (`executed_at`, then `fill_id`, so
   every replica and every re-run pairs them the same way).
2. A fill on the side of the open position (or with none open) opens a **lot**.
3. A fill on the other side closes the oldest lots first (FIFO). Each (lot, closing fill)
   pair is one closed `Trade` of the matched quantity: entry = the lot's fill, exit = the
   closing fill. A lot closed in parts gives one trade per part (partial fills); a fill
   that closes lots in parts gives one trade per lot.
4. What is left of a closing fill once no lot of the other side is open opens a lot on
   its own side: the position **flips** (long 1, sell 3 → one closed trade of 1, a short
   lot of 2).
5. Every lot still open is an open `Trade` (no exit, no pnl) of its remaining quantity.

Fees are shared in proportion to quantity, each part rounded to 18 decimals, and the last
part of a fill gets the remainder, so a fill's parts always add up to its fee exactly.
pnl = (exit − entry) × quantity for a long, (entry − exit) × quantity for a short, minus the
fees charged in the symbol's quote asset (or in no named asset); fees in any other asset
(BNB) are listed on the trade, not converted. Arithmetic runs at 200 digits: inputs are
bounded to 80 significant digits (shared.wire), so nothing is rounded but the fee parts.

Trade ids are derived from the fills (`closed`, entry fill, exit fill; `open`, entry fill):
pairing the same fills again gives the same trades, so the normaliser can re-pair a
(user, symbol) from scratch whenever a fill arrives, in or out of order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext

from shared.trades.models import FeeAmount, Fill, Side, Trade, derived_id

# Quote assets recognised at the end of a symbol (longest first), for the pnl's fee rule.
DEFAULT_QUOTE_ASSETS: tuple[str, ...] = (
    "FDUSD",
    "USDT",
    "USDC",
    "BUSD",
    "TUSD",
    "USDE",
    "DAI",
    "USD",
    "EUR",
    "TRY",
    "BRL",
    "BTC",
    "ETH",
    "BNB",
)
FEE_PLACES = Decimal(10) ** -18
_CONTEXT = Context(prec=200)


def quote_asset(symbol: str, quote_assets: Sequence[str] = DEFAULT_QUOTE_ASSETS) -> str | None:
    """The quote asset a symbol ends with (`BNBBTC` → BTC), or None when none is known."""
    for asset in sorted(quote_assets, key=len, reverse=True):
        if symbol.endswith(asset) and len(symbol) > len(asset):
            return asset
    return None


def sum_fees(fees: Iterable[tuple[str | None, Decimal]]) -> tuple[FeeAmount, ...]:
    """Fees added up per asset (in first-seen order); zero totals left out."""
    totals: dict[str | None, Decimal] = {}
    with localcontext(_CONTEXT):
        for asset, amount in fees:
            totals[asset] = totals.get(asset, Decimal(0)) + amount
    return tuple(FeeAmount(asset, amount) for asset, amount in totals.items() if amount)


def round_trip_pnl(
    side: Side,
    entry: Decimal,
    exit: Decimal,
    quantity: Decimal,
    fees: Iterable[tuple[str | None, Decimal]],
    symbol: str,
    quote_assets: Sequence[str] = DEFAULT_QUOTE_ASSETS,
) -> Decimal:
    """The pnl of a closed position, in the quote asset (module docstring)."""
    quote = quote_asset(symbol, quote_assets)
    with localcontext(_CONTEXT):
        gross = (exit - entry) * quantity if side is Side.BUY else (entry - exit) * quantity
        deducted = sum((amount for asset, amount in fees if asset is None or asset == quote), Decimal(0))
        pnl = gross - deducted
    return pnl if pnl else Decimal(0)  # never -0


@dataclass
class _Lot:
    """An open position opened by one fill: what is left of its quantity and of its fee."""

    fill: Fill
    quantity: Decimal
    fee: Decimal

    def take(self, quantity: Decimal) -> Decimal:
        """Close `quantity` of the lot; return the part of its fee that goes with it."""
        share = _fee_share(self.fee, quantity, self.quantity)
        self.quantity -= quantity
        self.fee -= share
        return share


def _fee_share(fee: Decimal, part: Decimal, whole: Decimal) -> Decimal:
    if part == whole:
        return fee  # the remainder: parts add up to the fee exactly
    if not fee:
        return fee
    share = (fee * part / whole).quantize(FEE_PLACES)
    return share.normalize() if share else Decimal(0)  # computed: no trailing zeros of the rounding


def pair_fifo(fills: Iterable[Fill], quote_assets: Sequence[str] = DEFAULT_QUOTE_ASSETS) -> list[Trade]:
    """Every trade the fills make, per (user, symbol), FIFO (module docstring): closed ones in
    the order they closed, then the open lots oldest first."""
    groups: dict[tuple[str, str], list[Fill]] = {}
    for fill in fills:
        groups.setdefault((fill.user_id, fill.symbol), []).append(fill)
    trades: list[Trade] = []
    with localcontext(_CONTEXT):
        for key in sorted(groups):
            trades += _pair_one(sorted(groups[key], key=lambda f: (f.executed_at, f.fill_id)), quote_assets)
    return trades


def _pair_one(fills: list[Fill], quote_assets: Sequence[str]) -> list[Trade]:
    lots: deque[_Lot] = deque()
    trades: list[Trade] = []
    for fill in fills:
        quantity, fee = fill.quantity, fill.fee
        while quantity > 0 and lots and lots[0].fill.side is not fill.side:
            lot = lots[0]
            matched = min(lot.quantity, quantity)
            entry_fee = lot.take(matched)
            exit_fee = _fee_share(fee, matched, quantity)
            quantity -= matched
            fee -= exit_fee
            trades.append(_closed(lot.fill, fill, matched, entry_fee, exit_fee, quote_assets))
            if not lot.quantity:
                lots.popleft()
        if quantity > 0:
            lots.append(_Lot(fill, quantity, fee))
    for lot in lots:
        trades.append(_open(lot))
    return trades


def _closed(
    entry: Fill, exit: Fill, quantity: Decimal, entry_fee: Decimal, exit_fee: Decimal, quote_assets: Sequence[str]
) -> Trade:
    fees = [(entry.fee_asset, entry_fee), (exit.fee_asset, exit_fee)]
    return Trade(
        trade_id=derived_id("closed", entry.fill_id, exit.fill_id),
        user_id=entry.user_id,
        symbol=entry.symbol,
        side=entry.side,
        entry_price=entry.price,
        quantity=quantity,
        entry_time=entry.executed_at,
        source=entry.source,
        exit_price=exit.price,
        exit_time=exit.executed_at,
        pnl=round_trip_pnl(entry.side, entry.price, exit.price, quantity, fees, entry.symbol, quote_assets),
        notes=entry.notes or exit.notes,
        fees=sum_fees(fees),
        entry_fill_id=entry.fill_id,
        exit_fill_id=exit.fill_id,
    )


def _open(lot: _Lot) -> Trade:
    entry = lot.fill
    return Trade(
        trade_id=derived_id("open", entry.fill_id),
        user_id=entry.user_id,
        symbol=entry.symbol,
        side=entry.side,
        entry_price=entry.price,
        quantity=lot.quantity,
        entry_time=entry.executed_at,
        source=entry.source,
        notes=entry.notes,
        fees=sum_fees([(entry.fee_asset, lot.fee)]),
        entry_fill_id=entry.fill_id,
    )
