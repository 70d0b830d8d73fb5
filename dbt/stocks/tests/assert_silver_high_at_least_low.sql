-- The original's silver rule, checked again where dbt reads silver: a quote whose day high is
-- below its day low fails the build (and the models that read it are skipped).
select symbol, market_time, day_high, day_low
from {{ source('silver', 'stock_quotes') }}
where day_high < day_low
