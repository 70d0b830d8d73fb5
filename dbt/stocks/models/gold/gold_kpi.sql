-- The latest KPI of each symbol: its most recently fetched quote (the original's gold_kpi).
with ranked as (
    select
        *,
        row_number() over (partition by symbol order by fetched_at desc, market_time_utc desc) as rn
    from {{ ref('silver_stock_quotes') }}
)

select
    symbol, instrument_key, currency, current_price, change_amount, change_percent,
    day_high, day_low, day_open, prev_close, market_time_utc, market_time_us, fetched_at
from ranked
where rn = 1
