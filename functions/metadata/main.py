"""metadata function: the top-100 set with contracts, links and market data (daily, and at once on an empty database).

Triggered by KafkaSource `metadata-request-source` (topic price-crawler.metadata.request).
Run locally: functions-framework --source functions/metadata/main.py --target metadata --signature-type http
"""

import functions_framework

from shared.crawler.freshness import watch_price_freshness
from shared.crawler.job_runner import JobContext, JobOutcome, run_job
from shared.crawler.pipelines.top100_metadata import refresh_top100_metadata
from shared.crawler.pipelines.trending import crawl_trending
from shared.runtime.app import FunctionApp, ff_entry


def _pipeline(ctx: JobContext) -> JobOutcome:
    return crawl_trending(ctx) if ctx.job.token_type == "trending" else refresh_top100_metadata(ctx)


def handle(event, resources):
    """Run one metadata job."""
    return run_job(event, resources, function="metadata", accepts={"metadata", "price_metadata"}, pipeline=_pipeline)


app = FunctionApp(
    name="metadata", handler=handle, needs_kafka=True, probes=[watch_price_freshness], topic_setting="metadata_topic"
)
metadata = functions_framework.http(ff_entry(app))
