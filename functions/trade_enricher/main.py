"""trade_enricher function: normalized-trades → market context in PostgreSQL → enriched-trades.

Triggered by KafkaSource `trade-enricher-source` (topic normalized-trades) and by
`trade-enricher-price-source` (the crawler's price-updated topic: trades waiting for a market
price are enriched again when their asset's price arrives). Pipeline: shared/trades/enricher.py.
Run locally: functions-framework --source functions/trade_enricher/main.py --target trade_enricher --signature-type http
"""

import functions_framework

from shared.runtime.app import FunctionApp, ff_entry
from shared.trades.enricher import enrich_event

app = FunctionApp(name="trade_enricher", handler=enrich_event, needs_kafka=True)
trade_enricher = functions_framework.http(ff_entry(app))
