-- Exchange sync (issue 18): linked exchange accounts and their sync cursors (docs/trades.md,
-- "Exchange sync"). No key or secret is ever stored here: `credential_name` names an entry of
-- TRADES_EXCHANGE_CREDENTIALS (a Kubernetes Secret / the environment).

CREATE TABLE trade_accounts (
    account_id       text PRIMARY KEY,
    user_id          text NOT NULL,
    exchange         text NOT NULL CHECK (exchange IN ('binance', 'bybit')),
    label            text NOT NULL CHECK (label ~ '^[A-Za-z0-9._:@-]{1,128}$'),
    -- Binance myTrades needs a symbol: the symbols synced. Bybit: unused.
    symbols          text[] NOT NULL DEFAULT '{}',
    -- Bybit categories synced (spot, linear, inverse, option). Binance: unused.
    categories       text[] NOT NULL DEFAULT '{spot}',
    credential_name  text NOT NULL CHECK (credential_name ~ '^[A-Za-z0-9_.-]{1,64}$'),
    enabled          boolean NOT NULL DEFAULT true,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, exchange, label)
);
CREATE INDEX idx_trade_accounts_enabled ON trade_accounts (exchange) WHERE enabled;

-- One cursor per account and stream (a Binance symbol, a Bybit category), advanced only after
-- Kafka acknowledged the fills it covers, in the transaction that records the job.
CREATE TABLE trade_sync_cursors (
    account_id         text NOT NULL REFERENCES trade_accounts (account_id) ON DELETE CASCADE,
    stream             text NOT NULL,
    from_id            bigint,          -- Binance: the next fromId to ask for (last id + 1)
    next_start_ms      bigint,          -- Bybit: the next startTime (everything before is synced)
    last_exec_time_ms  bigint,          -- the newest fill synced (both exchanges)
    last_exec_id       text,
    fills_synced       bigint NOT NULL DEFAULT 0,
    last_job_id        text,
    last_error         text,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, stream)
);
