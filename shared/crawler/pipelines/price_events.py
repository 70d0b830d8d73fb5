"""`price-crawler.price.updated`: one CloudEvent per committed price batch, keyed by token set.

Order logic (Limit/DCA) reacts to these instead of polling. The event is staged in the event
outbox in the transaction that commits the prices (`stage_price_batch`) and published after
the commit (`publish_price_batch`); a publish failure fails the job (503) and leaves the event
in the outbox, so it is published by the redelivery, by an expired redelivery before the job
ends, or by a later price job (shared/crawler/event_outbox.py): committed prices are always
announced, even when Kafka refused the first publish.

A redelivered job publishes the same event: its id derives from the job (source, token
set, job id), and its prices are the observations first committed (the redelivery
observes under the first attempt's time, `JobContext.observed_at`, so its rows are the
same rows). Consumers deduplicate by CloudEvent id.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from shared.crawler.contracts import PRICE_UPDATED_SCHEMA
from shared.crawler.event_outbox import publish_staged, stage_event
from shared.crawler.job_runner import JobContext
from shared.crawler.models import PriceQuote
from shared.crawler.store import Conn
from shared.events import OutboundEvent

PRICE_UPDATED_TYPE = "price-crawler.price.updated"
# Namespace of the name-based (v5) UUIDs that identify price.updated events.
_EVENT_ID_NAMESPACE = uuid.UUID("5c0f3e1e-7a51-4d2b-9f0e-3a6b1d2c4e58")


def stage_price_batch(
    conn: Conn, ctx: JobContext, token_set: str, quotes: Sequence[PriceQuote]
) -> OutboundEvent | None:
    """In the transaction that commits `quotes`: their event, kept in the outbox (None for no quotes)."""
    if not quotes:
        return None
    source = f"/price-crawler/{ctx.resources.settings.function_name or 'price'}"
    event = OutboundEvent(
        type=PRICE_UPDATED_TYPE,
        source=source,
        id=price_event_id(source, token_set, ctx.job_id),
        subject=token_set,
        key=token_set,
        extensions={"traceparent": ctx.traceparent, "jobid": _ext_safe(ctx.job_id)},
        dataschema=PRICE_UPDATED_SCHEMA,
        data=price_updated_data(ctx.job_id, token_set, quotes),
    )
    stage_event(conn, ctx.resources.settings.price_updated_topic, event, ctx.job_id)
    return event


def publish_price_batch(ctx: JobContext, event: OutboundEvent | None) -> None:
    """Announce a committed batch staged by `stage_price_batch` (nothing for an empty batch).

    Raises `DependencyUnavailable` when Kafka does not confirm it: the event stays staged.
    """
    if event is not None:
        publish_staged(ctx.resources, ctx.resources.settings.price_updated_topic, event)


def price_event_id(source: str, token_set: str, job_id: str) -> str:
    """The id of a job's price.updated event: the same on every redelivery, bounded, ASCII."""
    return str(uuid.uuid5(_EVENT_ID_NAMESPACE, f"{source}\n{token_set}\n{job_id}"))


def price_updated_data(job_id: str, token_set: str, quotes: Sequence[PriceQuote]) -> dict:
    """The event's data (schemas/price-updated.v1.json): exact decimal strings, UTC times."""
    return {
        "job_id": job_id,
        "token_set": token_set,
        "prices": [
            {
                "token_key": q.token_key,
                "symbol": q.symbol,
                "price_usdt": format(q.price_usdt, "f"),
                "source": q.source,
                "observed_at": q.observed_at.isoformat().replace("+00:00", "Z"),
            }
            for q in quotes
        ],
    }


def _ext_safe(value: str) -> str:
    # CloudEvent extension values travel as ce_* Kafka headers and ce-* HTTP headers.
    return value.encode("ascii", "replace").decode()[:256]
