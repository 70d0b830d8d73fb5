"""deadletter function: a job whose event reached a dead-letter topic ends as `dead_lettered`.

Triggered by KafkaSource `dead-letter-source` (topics price-crawler.{price,metadata,audit}.dead-letter).
Run locally: functions-framework --source functions/deadletter/main.py --target deadletter --signature-type http
"""

import functions_framework

from shared.crawler.pipelines.dead_letters import record_dead_letter
from shared.runtime.app import FunctionApp, ff_entry

app = FunctionApp(name="deadletter", handler=record_dead_letter)
deadletter = functions_framework.http(ff_entry(app))
