-- A daily candle whose high is below its low is impossible: any row returned fails the build.
select symbol, candle_date, candle_high, candle_low
from {{ ref('gold_candlestick') }}
where candle_high < candle_low
