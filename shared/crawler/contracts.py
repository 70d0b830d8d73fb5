"""The published contract of the events the system writes: one JSON Schema per message type.

Every event we emit carries a CloudEvents `dataschema` naming the schema of its data; the
schema files live in `schemas/` (`shared.schemas`), named by the last segment of that URI, and
are generated from the pydantic models (`python -m shared.crawler.contracts` rewrites them; a test fails when a
file and its model differ, so the two cannot drift).

    price-crawler.job.requested              JobMessage   (scheduler → request topics)
    price-crawler.metadata.detail.requested  JobMessage   (metadata → metadata request topic)
    price-crawler.trending.committed         JobMessage   (price → audit request topic: the audit job)
    price-crawler.price.updated              PriceUpdated (price → price-crawler.price.updated)

Schema URIs are `DATASCHEMA_BASE` + file name: one constant to change where they are served.
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.crawler.jobs import JobMessage
from shared.schemas import DATASCHEMA_BASE, model_schema, rewrite_schema_files

JOB_MESSAGE_SCHEMA = DATASCHEMA_BASE + "job-message.v1.json"
PRICE_UPDATED_SCHEMA = DATASCHEMA_BASE + "price-updated.v1.json"


class PricePoint(BaseModel):
    """One committed price of a `price-crawler.price.updated` event."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    token_key: str = Field(min_length=1, pattern=r"^[a-z0-9_-]+:.+$")
    symbol: str = Field(min_length=1)
    # An exact decimal as text: prices are never floats on the wire.
    price_usdt: str = Field(pattern=r"^(0|[1-9][0-9]*)(\.[0-9]+)?$")
    source: str = Field(min_length=1)
    observed_at: str = Field(
        json_schema_extra={"format": "date-time"}, pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$"
    )


class PriceUpdated(BaseModel):
    """Data of `price-crawler.price.updated`: one committed batch of prices of a token set."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    job_id: str = Field(min_length=1)
    token_set: str = Field(pattern=r"^(top100|trending)$")
    prices: list[PricePoint] = Field(min_length=1)


# The data schema of each event type we emit (CloudEvents `dataschema`).
EVENT_DATASCHEMAS: dict[str, str] = {
    "price-crawler.job.requested": JOB_MESSAGE_SCHEMA,
    "price-crawler.metadata.detail.requested": JOB_MESSAGE_SCHEMA,
    "price-crawler.trending.committed": JOB_MESSAGE_SCHEMA,
    "price-crawler.price.updated": PRICE_UPDATED_SCHEMA,
}
SCHEMA_MODELS: dict[str, type[BaseModel]] = {JOB_MESSAGE_SCHEMA: JobMessage, PRICE_UPDATED_SCHEMA: PriceUpdated}


def schema_document(uri: str) -> dict[str, Any]:
    """The JSON Schema published at `uri`, as its model generates it."""
    return model_schema(uri, SCHEMA_MODELS[uri])


if __name__ == "__main__":
    for name in rewrite_schema_files(SCHEMA_MODELS):
        print(f"schemas/{name}")
    sys.exit(0)
