"""CSV import (POST /api/trades/import): the file to bronze, every row checked, the good ones to raw-trades.

1. The file is stored in bronze, write-once, under its SHA-256 (`trades/imports/<user>/<digest>.csv`).
2. An import row is created per (user, digest): re-importing the same file finds it and publishes
   nothing again (its rows' identities, file digest and row number, would store nothing new anyway).
3. Every row is normalised here (pure, `normalize.csv_row`) so that a rejected row is reported with
   its number, field and reason at once; each accepted row is published to raw-trades as a
   `csv.row` record, in batches confirmed by Kafka. The import's counts are updated after each
   batch, so an import that dies says where it stopped (`rows_read`, `stopped_at`).

This slice imports within the request, up to `TRADES_MAX_IMPORT_BYTES`: a file of any size a
browser uploads, streamed and imported by a job, is not built yet (docs/trades.md).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from shared.errors import DependencyUnavailable
from shared.events import OutboundEvent
from shared.runtime.resources import Resources
from shared.trades.contracts import RAW_TRADE_SCHEMA, RAW_TRADE_TYPE, RawKind, millis_text, validate_record
from shared.trades.csv_import import CsvRow, open_csv
from shared.trades.errors import TradeRejected
from shared.trades.models import derived_id
from shared.trades.normalize import Received, csv_row
from shared.trades.settings import TradesSettings

EVENT_SOURCE = "/price-crawler/trades"
PUBLISH_BATCH = 500
MAX_LISTED_REJECTIONS = 1000


@dataclass(frozen=True)
class ImportOptions:
    """How to read the file: decimal commas, the zone of times without an offset, the account label."""

    decimal_comma: bool = False
    timezone: str | None = None
    account: str = "default"


@dataclass
class ImportReport:
    """What an import did; the body of its answer and of GET /api/trades/import/{id}."""

    import_id: str
    status: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    stopped_at: str | None = None
    rejections: list[dict[str, Any]] = field(default_factory=list)
    bronze_key: str = ""
    file_digest: str = ""

    def json(self) -> dict[str, Any]:
        return {
            "import_id": self.import_id,
            "status": self.status,
            "rows_read": self.rows_read,
            "rows_accepted": self.rows_accepted,
            "rows_rejected": self.rows_rejected,
            "stopped_at": self.stopped_at,
            "rejections": self.rejections,
            "file_digest": self.file_digest,
        }


def import_csv(
    resources: Resources, settings: TradesSettings, user_id: str, data: bytes, options: ImportOptions
) -> tuple[ImportReport, bool]:
    """Import one file; (its report, True when this call imported it, False when it was imported before)."""
    digest = hashlib.sha256(data).hexdigest()
    import_id = derived_id("import", user_id, digest)
    with resources.db.connection() as conn:
        existing = import_report(conn, user_id, import_id)
    if existing is not None and existing.status == "done":
        return existing, False
    archive = resources.archive
    if archive is None:
        raise DependencyUnavailable("no bronze archive configured (ARCHIVE_ENABLED, S3_*): imports are off")
    bronze_key = archive.write_blob(f"trades/imports/{user_id}/{digest}.csv", data, "text/csv")
    report = ImportReport(import_id, "running", bronze_key=bronze_key, file_digest=digest)
    with resources.db.connection() as conn:
        _upsert(conn, user_id, len(data), report)
    zone = ZoneInfo(options.timezone) if options.timezone else None
    received = Received(user_id, datetime.now(timezone.utc), account=options.account)
    try:
        csv_file = open_csv(data)
        batch: list[OutboundEvent] = []
        for item in csv_file.rows():
            if isinstance(item, TradeRejected):
                report.stopped_at = item.field
                _reject(report, item.field, "", item.detail)
                break
            report.rows_read += 1
            event = _row_event(item, csv_file.columns, received, digest, zone, options)
            if isinstance(event, TradeRejected):
                _reject(report, f"row {item.number}", event.field, event.detail)
                continue
            batch.append(event)
            if len(batch) >= PUBLISH_BATCH:
                _flush(resources, settings, user_id, len(data), report, batch)
        _flush(resources, settings, user_id, len(data), report, batch)
    except TradeRejected as exc:  # the file as a whole: not UTF-8, no header
        report.status, report.stopped_at = "failed", report.stopped_at or "header"
        _reject(report, "file", exc.field, exc.detail)
    else:
        report.status = "failed" if report.stopped_at else "done"
    with resources.db.connection() as conn:
        _upsert(conn, user_id, len(data), report)
    return report, True


def _row_event(
    row: CsvRow,
    columns: dict[str, int],
    received: Received,
    digest: str,
    zone: ZoneInfo | None,
    options: ImportOptions,
) -> OutboundEvent | TradeRejected:
    try:
        csv_row(
            row.cells,
            columns,
            received,
            file_digest=digest,
            row_number=row.number,
            zone=zone,
            decimal_comma=options.decimal_comma,
        )
    except TradeRejected as exc:
        return exc
    raw = {
        "user_id": received.user_id,
        "kind": RawKind.CSV_ROW.value,
        "received_at": millis_text(received.received_at),
        "account": options.account,
        "idempotency_key": None,
        "payload": {
            "file_digest": digest,
            "row": row.number,
            "cells": row.cells,
            "columns": columns,
            "decimal_comma": options.decimal_comma,
            "timezone": options.timezone,
        },
    }
    validate_record(RAW_TRADE_SCHEMA, raw)
    return OutboundEvent(
        type=RAW_TRADE_TYPE,
        source=EVENT_SOURCE,
        data=raw,
        key=received.user_id,
        id=derived_id("raw-csv", received.user_id, digest, str(row.number)),
        dataschema=RAW_TRADE_SCHEMA,
    )


def _reject(report: ImportReport, row: str, field: str, reason: str) -> None:
    report.rows_rejected += 1 if row.startswith("row ") else 0
    if len(report.rejections) < MAX_LISTED_REJECTIONS:
        report.rejections.append({"row": row, "field": field, "error": reason})


def _flush(
    resources: Resources,
    settings: TradesSettings,
    user_id: str,
    size: int,
    report: ImportReport,
    batch: list[OutboundEvent],
) -> None:
    if batch:
        resources.producer.publish(settings.raw_topic, batch)  # confirmed by Kafka, or raises
        report.rows_accepted += len(batch)
        batch.clear()
    with resources.db.connection() as conn:
        _upsert(conn, user_id, size, report)


def _upsert(conn: Any, user_id: str, size: int, report: ImportReport) -> None:
    conn.run(
        "INSERT INTO trade_imports (import_id, user_id, file_digest, file_bytes, bronze_key, status, rows_read,"
        " rows_accepted, rows_rejected, stopped_at, rejections)"
        " VALUES (CAST(:id AS uuid), :user, :digest, :size, :key, :status, :read, :accepted, :rejected, :stopped,"
        " CAST(:rejections AS jsonb))"
        " ON CONFLICT (import_id) DO UPDATE SET status = EXCLUDED.status, rows_read = EXCLUDED.rows_read,"
        " rows_accepted = EXCLUDED.rows_accepted, rows_rejected = EXCLUDED.rows_rejected,"
        " stopped_at = EXCLUDED.stopped_at, rejections = EXCLUDED.rejections, bronze_key = EXCLUDED.bronze_key,"
        " updated_at = now()",
        id=report.import_id,
        user=user_id,
        digest=report.file_digest,
        size=size,
        key=report.bronze_key,
        status=report.status,
        read=report.rows_read,
        accepted=report.rows_accepted,
        rejected=report.rows_rejected,
        stopped=report.stopped_at,
        rejections=json.dumps(report.rejections),
    )


def import_report(conn: Any, user_id: str, import_id: str) -> ImportReport | None:
    """One of the user's imports (another user's is None: never disclosed)."""
    rows = conn.run(
        "SELECT import_id, status, rows_read, rows_accepted, rows_rejected, stopped_at, rejections, bronze_key,"
        " file_digest FROM trade_imports WHERE import_id = CAST(:id AS uuid) AND user_id = :user",
        id=import_id,
        user=user_id,
    )
    if not rows:
        return None
    r = rows[0]
    rejections = json.loads(r[6]) if isinstance(r[6], str) else r[6]
    return ImportReport(str(r[0]), r[1], r[2], r[3], r[4], r[5], list(rejections), r[7], r[8])
