"""deadletter function: the dead-letter sink of every request KafkaSource.

Each dead letter is kept in PostgreSQL and its job ends as `dead_lettered` (one transaction),
then it is forwarded to its dead-letter topic (shared/crawler/pipelines/dead_letters.py).
The PingSource `dead-letter-forward-tick` forwards what Kafka refused earlier, once a minute.
Readiness checks PostgreSQL only: with Kafka down a dead letter is still taken (2xx) and kept.
Run locally: functions-framework --source functions/deadletter/main.py --target deadletter --signature-type http
"""

import functions_framework

from shared.crawler.pipelines.dead_letters import take_dead_letter_or_tick
from shared.runtime.app import FunctionApp, ff_entry

app = FunctionApp(name="deadletter", handler=take_dead_letter_or_tick)
deadletter = functions_framework.http(ff_entry(app))
