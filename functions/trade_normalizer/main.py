"""trade_normalizer function: raw-trades → fills and trades in PostgreSQL → normalized-trades.

Triggered by KafkaSource `trade-normalizer-source` (topic raw-trades); a record that can never
be normalised is answered 400 with its field and reason, and dead-lettered
(trade-normalizer.dead-letter). Pipeline: shared/trades/normalizer.py.
Run locally: functions-framework --source functions/trade_normalizer/main.py --target trade_normalizer --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.trades.normalizer import normalize_event

app = FunctionApp(name="trade_normalizer", handler=normalize_event, needs_kafka=True)
trade_normalizer = functions_framework.http(ff_entry(app))
