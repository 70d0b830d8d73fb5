"""audit function: GoPlus security audits of trending tokens, once their price and metadata committed.

Triggered by KafkaSource `audit-request-source` (topic price-crawler.audit.request), which
carries the trending job's completion event (type price-crawler.trending.committed).
Run locally: functions-framework --source functions/audit/main.py --target audit --signature-type http
"""

import functions_framework

from shared.crawler.freshness import watch_price_freshness
from shared.crawler.job_runner import run_job
from shared.crawler.pipelines.audit import audit_tokens
from shared.runtime.app import FunctionApp, ff_entry


def handle(event, resources):
    """Run one audit job."""
    return run_job(event, resources, function="audit", accepts={"audit"}, pipeline=audit_tokens)


app = FunctionApp(name="audit", handler=handle, probes=[watch_price_freshness], topic_setting="audit_topic")
audit = functions_framework.http(ff_entry(app))
