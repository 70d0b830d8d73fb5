-- Trade ingestion (DESIGN.md §9, docs/trades.md): fills from every source, the trades they pair
-- into, and the raw records that could never be normalised.
--
-- A fill is identified by (user, source, account, external id) (shared/trades/models.py);
-- fill_id is a UUID derived from that identity, so a redelivered or re-sent record inserts
-- nothing (ON CONFLICT DO NOTHING). content_digest tells a true repeat from a reused client
-- key carrying another trade (the first one is kept, the second recorded as a rejection).
-- Money is NUMERIC without precision (exact, as the wire gave it); times are timestamptz.
CREATE TABLE trade_fills (
    fill_id        uuid PRIMARY KEY,
    user_id        text NOT NULL,
    source         text NOT NULL CHECK (source IN ('manual', 'csv', 'binance', 'bybit')),
    account        text NOT NULL,
    external_id    text NOT NULL,
    symbol         text NOT NULL,
    side           text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    price          numeric NOT NULL CHECK (price > 0),
    quantity       numeric NOT NULL CHECK (quantity > 0),
    fee            numeric NOT NULL DEFAULT 0,
    fee_asset      text,
    executed_at    timestamptz NOT NULL,
    order_id       text,
    is_maker       boolean,
    notes          text,
    origin         text NOT NULL,
    raw_event_id   text NOT NULL,
    content_digest text NOT NULL,
    received_at    timestamptz NOT NULL,
    stored_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, source, account, external_id)
);
-- Pairing reads a (user, symbol)'s fills in time order.
CREATE INDEX trade_fills_position ON trade_fills (user_id, symbol, executed_at, fill_id);

-- The original Trade record, current state: 'paired' rows are re-derived from trade_fills by
-- FIFO pairing whenever a fill of their (user, symbol) arrives (shared/trades/pairing.py);
-- 'round_trip' rows are manual entries that named their exit, stored as given. `record` is the
-- wire form published on normalized-trades (schemas/trade.v1.json).
CREATE TABLE trades (
    trade_id      uuid PRIMARY KEY,
    user_id       text NOT NULL,
    symbol        text NOT NULL,
    side          text NOT NULL CHECK (side IN ('BUY', 'SELL')),
    entry_price   numeric NOT NULL CHECK (entry_price > 0),
    exit_price    numeric CHECK (exit_price > 0),
    quantity      numeric NOT NULL CHECK (quantity > 0),
    entry_time    timestamptz NOT NULL,
    exit_time     timestamptz,
    pnl           numeric,
    notes         text,
    source        text NOT NULL,
    status        text NOT NULL CHECK (status IN ('open', 'closed')),
    kind          text NOT NULL CHECK (kind IN ('paired', 'round_trip')),
    entry_fill_id uuid,
    exit_fill_id  uuid,
    record        jsonb NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
-- GET /api/trades: a user's trades, newest entry first, paged by (entry_time, trade_id).
CREATE INDEX trades_user_page ON trades (user_id, entry_time DESC, trade_id DESC);
CREATE INDEX trades_position ON trades (user_id, symbol) WHERE kind = 'paired';

-- CSV imports (POST /api/trades/import): one row per (user, file digest), so re-importing the
-- same file finds its import and adds nothing. The file itself is in bronze (`bronze_key`);
-- `rejections` lists the first rejected rows with their number, field and reason.
CREATE TABLE trade_imports (
    import_id     uuid PRIMARY KEY,
    user_id       text NOT NULL,
    file_digest   text NOT NULL,
    file_bytes    bigint NOT NULL,
    bronze_key    text NOT NULL,
    status        text NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    rows_read     integer NOT NULL DEFAULT 0,
    rows_accepted integer NOT NULL DEFAULT 0,
    rows_rejected integer NOT NULL DEFAULT 0,
    stopped_at    text,
    rejections    jsonb NOT NULL DEFAULT '[]',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, file_digest)
);

-- Raw records that can never be normalised (the normaliser answers 400 and KafkaSource
-- dead-letters them too) and reused idempotency keys: the field and the reason, once per
-- (raw event, field): a redelivered bad record is not counted twice.
CREATE TABLE trade_rejections (
    id           bigserial PRIMARY KEY,
    raw_event_id text NOT NULL,
    user_id      text,
    kind         text,
    field        text NOT NULL DEFAULT '',
    reason       text NOT NULL,
    rejected_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (raw_event_id, field)
);
CREATE INDEX trade_rejections_user ON trade_rejections (user_id, rejected_at DESC);
