"""trade_sync function: each linked exchange account's new fills to raw-trades, every minute.

Triggered by the PingSource `trade-sync-tick` (shared/trades/sync_job.py).
Run locally: functions-framework --source functions/trade_sync/main.py --target trade_sync --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.trades.sync_job import run_sync_tick

app = FunctionApp(name="trade_sync", handler=run_sync_tick, needs_kafka=True)
trade_sync = functions_framework.http(ff_entry(app))
