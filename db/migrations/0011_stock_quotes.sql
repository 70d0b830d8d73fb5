-- Stock analytics silver (issue #20, DESIGN.md §11): Finnhub quotes, typed and deduplicated.
--
-- One row per (symbol, market time): Finnhub repeats its last `t` on every call outside market
-- hours, and a redelivered job fetches again; the first arrival is kept (the same `t` carries the
-- same prices). Prices are USD, NUMERIC without a precision (exact, never truncated), and the
-- original's rules hold as constraints, so no code path can store a row that breaks them.
CREATE TABLE IF NOT EXISTS stock_quotes (
    symbol          text        NOT NULL,
    instrument_key  text        NOT NULL CHECK (instrument_key = 'stock:' || symbol),
    currency        text        NOT NULL DEFAULT 'USD' CHECK (currency = 'USD'),
    current_price   numeric     NOT NULL CHECK (current_price > 0),
    change          numeric,
    change_percent  numeric,
    day_high        numeric     NOT NULL CHECK (day_high > 0),
    day_low         numeric     NOT NULL CHECK (day_low > 0),
    day_open        numeric     NOT NULL CHECK (day_open > 0),
    previous_close  numeric     NOT NULL CHECK (previous_close > 0),
    market_time     timestamptz NOT NULL,
    fetched_at      timestamptz NOT NULL,
    PRIMARY KEY (symbol, market_time),
    CHECK (day_high >= day_low)
);
CREATE INDEX IF NOT EXISTS stock_quotes_fetched_at ON stock_quotes (fetched_at);

-- Every answer that was not a quote, with its reason (shared.stocks.models.RejectionReason):
-- counted by reason and kept for a while to be looked at.
CREATE TABLE IF NOT EXISTS stock_quote_rejections (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    symbol      text        NOT NULL,
    reason      text        NOT NULL,
    detail      text        NOT NULL,
    job_id      text,
    fetched_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS stock_quote_rejections_fetched_at ON stock_quote_rejections (fetched_at);
