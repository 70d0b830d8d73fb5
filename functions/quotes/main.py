"""quotes function: the read API for the trading UI and the order backend (docs/api.md).

GET /v1/prices, /v1/prices/{token}, /v1/tokens, /v1/tokens/{token}, /v1/tokens/{token}/candles,
/v1/kpis, /v1/tokens/{token}/kpis, /v1/tokens/{token}/volatility; plus /health/* and /metrics.
Read-only: it takes no CloudEvents and needs PostgreSQL only.
Run locally: functions-framework --source functions/quotes/main.py --target quotes --signature-type http --port 8085
"""

import functions_framework

from shared.crawler.quotes.app import QuotesApp
from shared.runtime.app import ff_entry

app = QuotesApp()
quotes = functions_framework.http(ff_entry(app))
