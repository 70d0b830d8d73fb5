"""price function: USDT prices for top-100 batches (every 5 s) and trending tokens (every minute).

Triggered by KafkaSource `price-request-source` (topic price-crawler.price.request).
Run locally: functions-framework --source functions/price/main.py --target price --signature-type http
"""

import functions_framework

from shared.crawler.freshness import watch_price_freshness
from shared.crawler.job_runner import JobContext, JobOutcome, run_job
from shared.crawler.pipelines.top100_prices import price_top100
from shared.crawler.pipelines.trending import crawl_trending
from shared.runtime.app import FunctionApp, ff_entry


def _pipeline(ctx: JobContext) -> JobOutcome:
    # Trending tokens are always fetched with their metadata.
    return crawl_trending(ctx) if ctx.job.token_type == "trending" else price_top100(ctx)


def handle(event, resources):
    """Run one price job."""
    return run_job(event, resources, function="price", accepts={"price", "price_metadata"}, pipeline=_pipeline)


app = FunctionApp(
    name="price", handler=handle, needs_kafka=True, probes=[watch_price_freshness], topic_setting="price_topic"
)
price = functions_framework.http(ff_entry(app))
