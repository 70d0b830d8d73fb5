-- Every KPI over time, one row per (symbol, market time), built incrementally: a run reads only
-- the silver rows fetched since its newest row (less a look-back for late commits) and
-- replaces the keys it read (delete+insert: idempotent, safe to re-run).
{{ config(
    materialized='incremental',
    unique_key=['symbol', 'market_time_utc'],
    incremental_strategy='delete+insert',
) }}

select
    symbol, instrument_key, currency, current_price, change_amount, change_percent,
    day_high, day_low, day_open, prev_close, market_time_utc, market_time_us, fetched_at
from {{ ref('silver_stock_quotes') }}
{% if is_incremental() %}
where fetched_at > (
    select coalesce(max(fetched_at), '-infinity'::timestamptz)
        - interval '{{ var("history_lookback_minutes") }} minutes'
    from {{ this }}
)
{% endif %}
