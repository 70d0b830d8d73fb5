"""stocks function: Finnhub quotes every 6 s through bronze and silver to `stock-quotes`; dbt gold every minute.

Triggered by the PingSources `stock-quotes-tick` and `stock-gold-tick` (shared/stocks/handler.py).
Run locally: functions-framework --source functions/stocks/main.py --target stocks --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.stocks.handler import gold_readiness, run_stocks_tick

# Not ready without dbt: a deployed stocks function whose gold tick cannot run says so.
app = FunctionApp(name="stocks", handler=run_stocks_tick, needs_kafka=True, readiness=[gold_readiness])
stocks = functions_framework.http(ff_entry(app))
