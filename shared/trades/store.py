"""Every query on the trade tables (db/migrations/0012_trades.sql)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from shared.trades.contracts import decimal_text, millis_text, trade_record
from shared.trades.models import Fill, Side, Source, Trade

FillOutcome = Literal["new", "duplicate", "conflict"]


def fill_digest(fill: Fill) -> str:
    """SHA-256 of what a fill says (not where it came from): a repeat has the same digest."""
    content = [
        fill.symbol,
        fill.side.value,
        decimal_text(fill.price),
        decimal_text(fill.quantity),
        millis_text(fill.executed_at),
        decimal_text(fill.fee),
        fill.fee_asset,
        fill.notes,
    ]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def lock_position(conn: Any, user_id: str, symbol: str) -> None:
    """Serialise the pairing of one (user, symbol) until the transaction ends (replicas, redeliveries)."""
    conn.run("SELECT pg_advisory_xact_lock(hashtextextended(:key, 18))", key=json.dumps([user_id, symbol]))


def insert_fill(conn: Any, fill: Fill, *, raw_event_id: str, received_at: datetime) -> FillOutcome:
    """Store a fill once: `new`, `duplicate` (the same fill again) or `conflict` (its identity,
    e.g. a reused idempotency key, already names a different fill; the first one is kept)."""
    digest = fill_digest(fill)
    rows = conn.run(
        "INSERT INTO trade_fills (fill_id, user_id, source, account, external_id, symbol, side, price, quantity,"
        " fee, fee_asset, executed_at, order_id, is_maker, notes, origin, raw_event_id, content_digest, received_at)"
        " VALUES (CAST(:fill_id AS uuid), :user_id, :source, :account, :external_id, :symbol, :side,"
        " CAST(:price AS numeric), CAST(:quantity AS numeric), CAST(:fee AS numeric), :fee_asset, :executed_at,"
        " :order_id, :is_maker, :notes, :origin, :raw_event_id, :digest, :received_at)"
        " ON CONFLICT DO NOTHING RETURNING fill_id",
        fill_id=fill.fill_id,
        user_id=fill.user_id,
        source=fill.source.value,
        account=fill.account,
        external_id=fill.external_id,
        symbol=fill.symbol,
        side=fill.side.value,
        price=decimal_text(fill.price),
        quantity=decimal_text(fill.quantity),
        fee=decimal_text(fill.fee),
        fee_asset=fill.fee_asset,
        executed_at=fill.executed_at,
        order_id=fill.order_id,
        is_maker=fill.is_maker,
        notes=fill.notes,
        origin=fill.origin,
        raw_event_id=raw_event_id,
        digest=digest,
        received_at=received_at,
    )
    if rows:
        return "new"
    existing = conn.run("SELECT content_digest FROM trade_fills WHERE fill_id = CAST(:id AS uuid)", id=fill.fill_id)
    return "duplicate" if existing and existing[0][0] == digest else "conflict"


def fills_of(conn: Any, user_id: str, symbol: str) -> list[Fill]:
    """A (user, symbol)'s fills in pairing order."""
    rows = conn.run(
        "SELECT user_id, source, account, external_id, symbol, side, price, quantity, executed_at, fee, fee_asset,"
        " order_id, is_maker, notes, origin FROM trade_fills WHERE user_id = :user AND symbol = :symbol"
        " ORDER BY executed_at, fill_id",
        user=user_id,
        symbol=symbol,
    )
    return [
        Fill(
            user_id=r[0],
            source=Source(r[1]),
            account=r[2],
            external_id=r[3],
            symbol=r[4],
            side=Side(r[5]),
            price=Decimal(r[6]),
            quantity=Decimal(r[7]),
            executed_at=r[8],
            fee=Decimal(r[9]),
            fee_asset=r[10],
            order_id=r[11],
            is_maker=r[12],
            notes=r[13],
            origin=r[14],
        )
        for r in rows
    ]


@dataclass(frozen=True)
class PairingChange:
    """What re-pairing a (user, symbol) changed: records new or different, records gone."""

    changed: list[dict[str, Any]]
    superseded: list[dict[str, Any]]

    @property
    def records(self) -> list[dict[str, Any]]:
        """What to publish, in order: the superseded first, then their replacements."""
        return [*self.superseded, *self.changed]


def replace_paired_trades(conn: Any, user_id: str, symbol: str, trades: list[Trade]) -> PairingChange:
    """Make the stored paired trades of (user, symbol) exactly `trades`; say what changed."""
    stored = {
        str(r[0]): r[1]
        for r in conn.run(
            "SELECT trade_id, record FROM trades WHERE user_id = :user AND symbol = :symbol AND kind = 'paired'",
            user=user_id,
            symbol=symbol,
        )
    }
    wanted = {t.trade_id: (t, trade_record(t)) for t in trades}
    changed = []
    for trade_id, (trade, record) in wanted.items():
        if _as_dict(stored.get(trade_id)) != record:
            _upsert_trade(conn, trade, record, "paired")
            changed.append(record)
    gone = [trade_id for trade_id in stored if trade_id not in wanted]
    superseded = []
    for trade_id in gone:
        superseded.append({**(_as_dict(stored[trade_id]) or {}), "status": "superseded"})
        conn.run("DELETE FROM trades WHERE trade_id = CAST(:id AS uuid)", id=trade_id)
    return PairingChange(changed, superseded)


def insert_round_trip(conn: Any, trade: Trade) -> dict[str, Any] | None:
    """Store a manual round trip once; its record, or None when it was stored before."""
    record = trade_record(trade)
    if conn.run("SELECT 1 FROM trades WHERE trade_id = CAST(:id AS uuid)", id=trade.trade_id):
        return None
    _upsert_trade(conn, trade, record, "round_trip")
    return record


def _upsert_trade(conn: Any, trade: Trade, record: dict[str, Any], kind: str) -> None:
    conn.run(
        "INSERT INTO trades (trade_id, user_id, symbol, side, entry_price, exit_price, quantity, entry_time,"
        " exit_time, pnl, notes, source, status, kind, entry_fill_id, exit_fill_id, record)"
        " VALUES (CAST(:trade_id AS uuid), :user_id, :symbol, :side, CAST(:entry_price AS numeric),"
        " CAST(:exit_price AS numeric), CAST(:quantity AS numeric), :entry_time, :exit_time, CAST(:pnl AS numeric),"
        " :notes, :source, :status, :kind, CAST(:entry_fill_id AS uuid), CAST(:exit_fill_id AS uuid),"
        " CAST(:record AS jsonb))"
        " ON CONFLICT (trade_id) DO UPDATE SET side = EXCLUDED.side, entry_price = EXCLUDED.entry_price,"
        " exit_price = EXCLUDED.exit_price, quantity = EXCLUDED.quantity, entry_time = EXCLUDED.entry_time,"
        " exit_time = EXCLUDED.exit_time, pnl = EXCLUDED.pnl, notes = EXCLUDED.notes, status = EXCLUDED.status,"
        " entry_fill_id = EXCLUDED.entry_fill_id, exit_fill_id = EXCLUDED.exit_fill_id,"
        " record = EXCLUDED.record, updated_at = now()",
        trade_id=trade.trade_id,
        user_id=trade.user_id,
        symbol=trade.symbol,
        side=trade.side.value,
        entry_price=record["entry_price"],
        exit_price=record["exit_price"],
        quantity=record["quantity"],
        entry_time=trade.entry_time,
        exit_time=trade.exit_time,
        pnl=record["pnl"],
        notes=trade.notes,
        source=trade.source.value,
        status=trade.status,
        kind=kind,
        entry_fill_id=trade.entry_fill_id,
        exit_fill_id=trade.exit_fill_id,
        record=json.dumps(record),
    )


def _as_dict(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return json.loads(value) if isinstance(value, str) else value


def record_rejection(
    conn: Any, *, raw_event_id: str, user_id: str | None, kind: str | None, field: str, reason: str
) -> None:
    """Note a raw record that can never be normalised (once per raw event and field)."""
    conn.run(
        "INSERT INTO trade_rejections (raw_event_id, user_id, kind, field, reason)"
        " VALUES (:event, :user, :kind, :field, :reason) ON CONFLICT (raw_event_id, field) DO NOTHING",
        event=raw_event_id[:200],
        user=user_id,
        kind=kind,
        field=field[:200],
        reason=reason[:2000],
    )


# --- the read side: GET /api/trades ----------------------------------------------------------


def list_trades(
    conn: Any, user_id: str, *, after: tuple[datetime, str] | None, limit: int, symbol: str | None = None
) -> list[dict[str, Any]]:
    """A user's trades, newest entry first, after the (entry_time, trade_id) of a previous page."""
    where = ["user_id = :user"]
    params: dict[str, Any] = {"user": user_id, "limit": limit}
    if symbol is not None:
        where.append("symbol = :symbol")
        params["symbol"] = symbol
    if after is not None:
        where.append("(entry_time, trade_id) < (:after_time, CAST(:after_id AS uuid))")
        params.update(after_time=after[0], after_id=after[1])
    rows = conn.run(
        f"SELECT record FROM trades WHERE {' AND '.join(where)} ORDER BY entry_time DESC, trade_id DESC LIMIT :limit",
        **params,
    )
    return [d for d in (_as_dict(r[0]) for r in rows) if d is not None]


def trade_of(conn: Any, user_id: str, trade_id: str) -> dict[str, Any] | None:
    """One trade of the user's, or None (another user's trade is None too: never disclosed)."""
    rows = conn.run(
        "SELECT record FROM trades WHERE trade_id = CAST(:id AS uuid) AND user_id = :user", id=trade_id, user=user_id
    )
    return _as_dict(rows[0][0]) if rows else None
