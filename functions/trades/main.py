"""trades function: the trades HTTP API (docs/trades.md, docs/trades-openapi.yaml).

POST /api/trades (one trade or a batch → raw-trades, 202 once Kafka confirmed), GET /api/trades,
GET /api/trades/{trade_id}; every route needs a bearer token whose subject is the user id.
Run locally: functions-framework --source functions/trades/main.py --target trades --signature-type http --port 8087
"""

import functions_framework

from shared.runtime.app import ff_entry
from shared.trades.app import TradesApp

app = TradesApp()
trades = functions_framework.http(ff_entry(app))
