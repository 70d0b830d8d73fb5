-- Trade enrichment and behavioural alerts (docs/trades.md, "Enrichment" and "Alerts").
--
-- trade_enrichments: the current market context of each trade (one row per trade_id,
-- overwritten when the trade changes or is enriched again); `record` is the wire form
-- published on enriched-trades (schemas/enriched-trade.v1.json). Money is NUMERIC without
-- precision, slippage in basis points as computed (exact to 4 decimals).
CREATE TABLE trade_enrichments (
    trade_id              uuid PRIMARY KEY,
    user_id               text NOT NULL,
    symbol                text NOT NULL,
    base_asset            text NOT NULL,
    quote_asset           text,
    status                text NOT NULL CHECK (status IN ('enriched', 'pending_market', 'superseded')),
    reason                text,
    token_key             text,
    entry_market_price    numeric CHECK (entry_market_price > 0),
    entry_slippage_bps    numeric,
    exit_market_price     numeric CHECK (exit_market_price > 0),
    exit_slippage_bps     numeric,
    audit_score           numeric,
    record                jsonb NOT NULL,
    content_digest        text NOT NULL,
    enriched_at           timestamptz NOT NULL,
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trade_enrichments_user ON trade_enrichments (user_id, enriched_at DESC);
-- The trades waiting for a market price, by the asset they wait for (re-enrichment).
CREATE INDEX trade_enrichments_pending ON trade_enrichments (base_asset) WHERE status = 'pending_market';

-- KF-01: the assets users trade that the crawler does not track (or has no price of).
-- The crawler's token sets (token_set_members: top100, trending) are its own; this table is
-- the request, for the crawler's scheduler (or an operator) to pick up: see docs/trades.md.
CREATE TABLE trade_market_requests (
    base_asset         text PRIMARY KEY,
    example_symbol     text NOT NULL,
    reason             text NOT NULL,
    trades_waiting     integer NOT NULL DEFAULT 1,
    first_requested_at timestamptz NOT NULL DEFAULT now(),
    last_requested_at  timestamptz NOT NULL DEFAULT now()
);

-- What the analyser knows of each user's trades (its own copy, written in the transaction
-- that raises the alerts, so the rules read exactly what they decided on). `entry_key` names
-- the entry a trade came from (its entry fill, or the trade itself): one entry split into a
-- closed part and an open rest counts once for overtrading and is alerted on once.
CREATE TABLE trade_behaviour_history (
    trade_id     uuid PRIMARY KEY,
    user_id      text NOT NULL,
    symbol       text NOT NULL,
    quote_asset  text,
    entry_key    text NOT NULL,
    exit_key     text,
    entry_time   timestamptz NOT NULL,
    exit_time    timestamptz,
    pnl          numeric,
    notional     numeric NOT NULL CHECK (notional > 0),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trade_behaviour_history_user ON trade_behaviour_history (user_id, entry_time DESC);
CREATE INDEX trade_behaviour_history_losses ON trade_behaviour_history (user_id, exit_time DESC) WHERE pnl < 0;

-- Alerts: alert_id derives from the rule and its cause (shared/trades/behaviour.py), so a
-- redelivered trade inserts nothing (ON CONFLICT DO NOTHING) and publishes nothing.
CREATE TABLE behavioral_alerts (
    alert_id          uuid PRIMARY KEY,
    user_id           text NOT NULL,
    rule              text NOT NULL,
    trigger_trade_id  uuid NOT NULL,
    trade_ids         uuid[] NOT NULL,
    symbol            text NOT NULL,
    message           text NOT NULL,
    details           jsonb NOT NULL,
    occurred_at       timestamptz NOT NULL,
    record            jsonb NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX behavioral_alerts_user ON behavioral_alerts (user_id, created_at DESC);
CREATE INDEX behavioral_alerts_rule ON behavioral_alerts (user_id, rule, occurred_at DESC);

-- A user's feed: their enriched trades and alerts in commit order (GET /api/trades/feed, and the
-- WebSocket feed to come). `seq` is the cursor. Every writer appends under an advisory lock per
-- user held until its commit (shared/trades/feed.py), so one user's seqs commit in order: a
-- reader that resumes after the last seq it saw misses nothing and sees nothing twice.
CREATE TABLE trade_feed (
    seq          bigserial PRIMARY KEY,
    user_id      text NOT NULL,
    kind         text NOT NULL CHECK (kind IN ('trade', 'alert')),
    item_id      text NOT NULL,
    record       jsonb NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX trade_feed_user ON trade_feed (user_id, seq);
