"""trade_analyser function: enriched-trades → behavioural alerts in PostgreSQL → behavioral-alerts.

Triggered by KafkaSource `trade-analyser-source` (topic enriched-trades); each alert names the
trades that caused it and is raised once (its id derives from its cause).
Pipeline: shared/trades/analyser.py, rules in shared/trades/behaviour.py.
Run locally: functions-framework --source functions/trade_analyser/main.py --target trade_analyser --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.trades.analyser import analyse_event

app = FunctionApp(name="trade_analyser", handler=analyse_event, needs_kafka=True)
trade_analyser = functions_framework.http(ff_entry(app))
