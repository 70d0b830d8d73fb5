-- Core tables: tokens, token_prices, token_audits, job_logs,
-- with the design's corrections to the original schema.

-- tokens: one row per token, overwritten when seen again. token_key is
-- '<chain>:<canonical address>' or 'native:<coingecko id>' (docs/architecture.md).
CREATE TABLE tokens (
    token_key        text PRIMARY KEY,
    symbol           text NOT NULL,
    name             text,
    chain            text,                    -- chain of the primary contract (NULL for native coins)
    contract         text,                    -- primary contract, canonical form (NULL for native coins)
    decimals         integer,
    logo_url         text,
    contracts        jsonb NOT NULL DEFAULT '{}'::jsonb,   -- {"ethereum": "0x…", "solana": "…"}
    websites         jsonb NOT NULL DEFAULT '[]'::jsonb,
    socials          jsonb NOT NULL DEFAULT '[]'::jsonb,   -- [{"type": "twitter", "url": "…"}]
    tags             text[] NOT NULL DEFAULT '{}',
    coingecko_id     text,
    market_cap_usd   numeric,
    market_cap_rank  integer,
    main_pool        jsonb,                   -- the pool with the most liquidity
    markets          jsonb NOT NULL DEFAULT '[]'::jsonb,
    is_stablecoin    boolean NOT NULL DEFAULT false,
    source           text NOT NULL,
    first_seen_at    timestamptz NOT NULL DEFAULT now(),
    last_updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tokens_key_form CHECK (token_key ~ '^[a-z0-9_-]+:.+$')
);
CREATE INDEX idx_tokens_symbol ON tokens (upper(symbol));
CREATE INDEX idx_tokens_coingecko_id ON tokens (coingecko_id) WHERE coingecko_id IS NOT NULL;

-- Every (chain, address) a token is known by, so one token seen through several
-- APIs and chains stays one row. EVM addresses are stored lower-case, others as-is.
CREATE TABLE token_contracts (
    chain      text NOT NULL,
    address    text NOT NULL,
    token_key  text NOT NULL REFERENCES tokens (token_key) ON DELETE CASCADE,
    decimals   integer,
    PRIMARY KEY (chain, address)
);
CREATE INDEX idx_token_contracts_token ON token_contracts (token_key);

-- Token sets are memberships, not types: a token may be top100 and trending at once.
-- Leaving a set marks the row (left_at), it is never deleted.
CREATE TABLE token_set_members (
    token_set     text NOT NULL CHECK (token_set IN ('top100', 'trending')),
    token_key     text NOT NULL REFERENCES tokens (token_key) ON DELETE CASCADE,
    rank          integer,
    joined_at     timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    left_at       timestamptz,
    PRIMARY KEY (token_set, token_key)
);
CREATE INDEX idx_token_set_current ON token_set_members (token_set, rank) WHERE left_at IS NULL;

-- token_prices: every observation. Unbounded precision (NUMERIC without a scale:
-- 0.000000000012345 keeps all its digits), daily range partitions, retention by
-- dropping whole partitions. The primary key makes a redelivered observation a no-op.
CREATE TABLE token_prices (
    token_key    text NOT NULL,
    price_usdt   numeric NOT NULL CHECK (price_usdt > 0),
    source       text NOT NULL,
    observed_at  timestamptz NOT NULL,
    job_id       text,
    ingested_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_key, observed_at)
) PARTITION BY RANGE (observed_at);
-- Catches rows outside the prepared partitions so an insert never fails for lack of one.
CREATE TABLE token_prices_default PARTITION OF token_prices DEFAULT;

-- The latest price per token, read in O(1). Only moves forward in time, so a late or
-- redelivered older observation never overwrites a newer one.
CREATE TABLE token_latest_prices (
    token_key    text PRIMARY KEY REFERENCES tokens (token_key) ON DELETE CASCADE,
    price_usdt   numeric NOT NULL CHECK (price_usdt > 0),
    source       text NOT NULL,
    observed_at  timestamptz NOT NULL,
    job_id       text,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX idx_latest_prices_observed ON token_latest_prices (observed_at);

-- token_audits: one current audit per (token, provider), overwritten; raw flags kept.
CREATE TABLE token_audits (
    token_key       text NOT NULL REFERENCES tokens (token_key) ON DELETE CASCADE,
    audit_provider  text NOT NULL,
    audit_score     numeric(5, 2) NOT NULL CHECK (audit_score BETWEEN 0 AND 100),
    is_verified     boolean NOT NULL,
    is_honeypot     boolean,
    buy_tax         numeric,
    sell_tax        numeric,
    report_url      text,
    flags           jsonb NOT NULL DEFAULT '{}'::jsonb,
    audited_at      timestamptz NOT NULL,
    job_id          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (token_key, audit_provider)
);

-- job_logs: one 'job' row per job (counts, status) and one 'token' row per token that
-- failed, with the reason. Redelivery updates the same rows (attempts counts them).
CREATE TABLE job_logs (
    id                bigserial PRIMARY KEY,
    row_kind          text NOT NULL CHECK (row_kind IN ('job', 'token')),
    job_id            text NOT NULL,
    job_type          text NOT NULL,
    token_type        text,
    token_ref         text NOT NULL DEFAULT '',   -- token key/symbol for 'token' rows
    status            text NOT NULL CHECK (status IN
                        ('running', 'succeeded', 'partial', 'failed', 'rejected', 'skipped')),
    message           text,
    tokens_requested  integer,
    tokens_succeeded  integer,
    tokens_failed     integer,
    attempts          integer NOT NULL DEFAULT 1,
    event_id          text,
    started_at        timestamptz,
    finished_at       timestamptz,
    executed_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX uq_job_logs_row ON job_logs (job_id, row_kind, token_ref);
CREATE INDEX idx_job_logs_executed ON job_logs (executed_at DESC);
CREATE INDEX idx_job_logs_failures ON job_logs (executed_at DESC) WHERE status IN ('failed', 'rejected', 'partial');
CREATE INDEX idx_job_logs_token ON job_logs (token_ref) WHERE row_kind = 'token';
