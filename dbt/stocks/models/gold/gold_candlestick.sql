-- Daily candles by US/Eastern trading day, the last {{ var('candle_days') }} days with quotes
-- per symbol (the original's gold_candlestick): open and close are the first and last quoted
-- price of the day by market time, low and high Finnhub's day low and high, the trend line
-- the day's average quoted price.
with daily as (
    select
        symbol,
        trading_day as candle_date,
        (array_agg(current_price order by market_time_utc asc))[1] as candle_open,
        max(day_high) as candle_high,
        min(day_low) as candle_low,
        (array_agg(current_price order by market_time_utc desc))[1] as candle_close,
        avg(current_price) as trend_line,
        count(*) as quote_count,
        min(market_time_utc) as first_quote_at,
        max(market_time_utc) as last_quote_at
    from {{ ref('silver_stock_quotes') }}
    group by symbol, trading_day
),

ranked as (
    select
        *,
        row_number() over (partition by symbol order by candle_date desc) as rn
    from daily
)

select
    symbol, candle_date, candle_open, candle_high, candle_low, candle_close, trend_line,
    quote_count, first_quote_at, last_quote_at
from ranked
where rn <= {{ var('candle_days') }}
