-- The original's bronze view and silver model in one view: silver itself is written, validated
-- and deduplicated by the stocks function (the table's constraints are the original's rules),
-- so dbt only renames and adds the US/Eastern wall clock and trading day.
select
    symbol,
    instrument_key,
    currency,
    current_price,
    change as change_amount,
    change_percent,
    day_high,
    day_low,
    day_open,
    previous_close as prev_close,
    market_time as market_time_utc,
    (market_time at time zone '{{ var("market_timezone") }}') as market_time_us,
    cast((market_time at time zone '{{ var("market_timezone") }}') as date) as trading_day,
    fetched_at
from {{ source('silver', 'stock_quotes') }}
