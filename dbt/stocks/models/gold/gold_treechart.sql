-- Per symbol (the original's gold_treechart): the average price on the latest trading day
-- (US/Eastern) of any symbol, and the population standard deviation of every quoted price with
-- its ratio to their mean (relative volatility).
with source as (
    select symbol, current_price as price, trading_day
    from {{ ref('silver_stock_quotes') }}
),

latest_day as (
    select max(trading_day) as max_day from source
),

latest_avg_price as (
    select s.symbol, avg(s.price) as avg_price
    from source s
    join latest_day ld on s.trading_day = ld.max_day
    group by s.symbol
),

volatility as (
    select
        symbol,
        stddev_pop(price) as volatility,
        stddev_pop(price) / nullif(avg(price), 0) as relative_volatility,
        count(*) as quote_count
    from source
    group by symbol
)

select a.symbol, ld.max_day as latest_day, a.avg_price, v.volatility, v.relative_volatility, v.quote_count
from latest_avg_price a
join volatility v using (symbol)
cross join latest_day ld
