"""`price-crawler.price.updated`: one CloudEvent per committed price batch, keyed by token set.

Order logic (Limit/DCA) reacts to these instead of polling. Published only after the
prices committed; a publish failure fails the job (503) so redelivery publishes again.
"""

from __future__ import annotations

from typing import Sequence

from shared.crawler.contracts import PRICE_UPDATED_SCHEMA
from shared.crawler.models import PriceQuote
from shared.events import OutboundEvent
from shared.crawler.job_runner import JobContext

PRICE_UPDATED_TYPE = "price-crawler.price.updated"


def publish_price_batch(ctx: JobContext, token_set: str, quotes: Sequence[PriceQuote]) -> None:
    """Announce a committed batch of prices (no event for an empty batch)."""
    if not quotes:
        return
    event = OutboundEvent(
        type=PRICE_UPDATED_TYPE,
        source=f"/price-crawler/{ctx.resources.settings.function_name or 'price'}",
        subject=token_set,
        key=token_set,
        extensions={"traceparent": ctx.traceparent, "jobid": _ext_safe(ctx.job_id)},
        dataschema=PRICE_UPDATED_SCHEMA,
        data=price_updated_data(ctx.job_id, token_set, quotes),
    )
    ctx.resources.producer.publish(ctx.resources.settings.price_updated_topic, [event])


def price_updated_data(job_id: str, token_set: str, quotes: Sequence[PriceQuote]) -> dict:
    """The event's data (schemas/price-updated.v1.json): exact decimal strings, UTC times."""
    return {
        "job_id": job_id,
        "token_set": token_set,
        "prices": [
            {"token_key": q.token_key, "symbol": q.symbol, "price_usdt": format(q.price_usdt, "f"),
             "source": q.source, "observed_at": q.observed_at.isoformat().replace("+00:00", "Z")}
            for q in quotes
        ],
    }


def _ext_safe(value: str) -> str:
    # CloudEvent extension values travel as ce_* Kafka headers and ce-* HTTP headers.
    return value.encode("ascii", "replace").decode()[:256]
