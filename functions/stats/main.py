"""stats function: scheduled ticks in, change-only stats events out (docs/stats.md).

Triggered by the PingSources `chain-performance-tick` (every minute, `stats.chain_performance_updated`),
`bridge-latency-tick` (every 2 minutes, `stats.bridge_latency_updated`) and `stats-overview-tick`
(every 5 minutes, `stats.overview_updated`).
Run locally: functions-framework --source functions/stats/main.py --target stats --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.stats.pipeline import check_stats_settings, run_stats_tick

# The probe reads the settings at start: a route set no provider budget can fit stops the process here.
app = FunctionApp(name="stats", handler=run_stats_tick, needs_kafka=True, probes=[check_stats_settings])
stats = functions_framework.http(ff_entry(app))
