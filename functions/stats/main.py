"""stats function: chain-performance ticks in, `stats.chain_performance_updated` events out, only on change.

Triggered by the PingSource `chain-performance-tick` (every minute).
Run locally: functions-framework --source functions/stats/main.py --target stats --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.stats.pipeline import run_stats_tick

app = FunctionApp(name="stats", handler=run_stats_tick, needs_kafka=True)
stats = functions_framework.http(ff_entry(app))
