-- The latest KPI of each symbol by market time, read from the history (the original's view).
{{ config(materialized='view') }}

with ranked as (
    select
        *,
        row_number() over (partition by symbol order by market_time_utc desc) as rn
    from {{ ref('gold_kpi_history') }}
)

select
    symbol, instrument_key, currency, current_price, change_amount, change_percent,
    day_high, day_low, day_open, prev_close, market_time_utc, market_time_us, fetched_at
from ranked
where rn = 1
