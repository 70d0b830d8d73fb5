"""scheduler function: PingSource ticks in, job messages out (binary-mode CloudEvents on Kafka).

Triggered by the PingSources `top100-price-tick`, `top100-metadata-tick` and `trending-tick`.
Run locally: functions-framework --source functions/scheduler/main.py --target scheduler --signature-type http
"""

import functions_framework

from shared.crawler.freshness import watch_price_freshness
from shared.crawler.pipelines.scheduler import run_tick
from shared.runtime.app import FunctionApp, ff_entry

app = FunctionApp(name="scheduler", handler=run_tick, needs_kafka=True, probes=[watch_price_freshness])
scheduler = functions_framework.http(ff_entry(app))
