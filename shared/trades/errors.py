"""The error of the trade system's inputs: a record that can never become a fill."""

from __future__ import annotations

from shared.errors import BadMessage


class TradeRejected(BadMessage):
    """A trade (manual entry, CSV row, exchange record) that can never be normalised.

    `field` names the offending field ("price", "executed_at", "side", ...; "" for the record
    as a whole) and `reason` says why; the API answers 400 with both, the normaliser
    dead-letters the record with them, an import lists them per row.
    """

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}" if field else reason)
        self.field = field
        self.detail = reason
