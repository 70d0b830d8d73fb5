"""Bronze: every raw upstream response, archived once in S3-compatible object storage.

Key layout (docs/data-layers.md):

    <prefix>/<source>/<YYYY-MM-DD>/<HH>/<job id>/<HHMMSSffffff>-<digest>.json

- `source` is the upstream API (binance, coingecko, dexscreener, geckoterminal, goplus),
  or `job` for the job message itself (one per job attempt, path `/<job_type>/<token_type>`:
  replay reads which tokens a job asked for from it);
- date and hour are the UTC fetch time, so a time range is a handful of prefix listings;
- `job id` is the job the request was made for (`_nojob` outside a job), percent-encoded
  so it is one path segment;
- the name is the fetch time (microseconds) and a digest of the request and body, so the
  same response archived twice (a retried upload, a hook called again) is one object, while
  a redelivered job's new fetch is a new object: the live path committed rows from it too.

Objects are written with `If-None-Match: *`: never overwritten. An object is a JSON envelope:
request metadata (path, params, status, a subset of headers, fetch time, job id) and the
body exactly as received (UTF-8 text, or base64 when not text), so replay decodes the same
bytes the live path decoded. Archiving never fails a crawl: errors are logged and counted.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, unquote

import httpx

from shared.config import Settings
from shared.observability import metrics
from shared.observability.logging import current_context

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
NO_JOB = "_nojob"
JOB_SOURCE = "job"  # the `source` of archived job messages
# Headers worth keeping: what the body means and what the API said about our budget.
KEPT_HEADERS = (
    "content-type",
    "date",
    "retry-after",
    "x-mbx-used-weight-1m",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "cf-cache-status",
    "age",
)


@dataclass(frozen=True, slots=True)
class ArchivedResponse:
    """One raw upstream response with its request metadata."""

    source: str
    path: str
    params: dict[str, Any]
    status: int
    headers: dict[str, str]
    fetched_at: datetime
    job_id: str | None
    body: bytes
    context: dict[str, str]

    @property
    def observed_at(self) -> datetime | None:
        """The observation time the job stamped on its prices, when it published one in its log context."""
        text = self.context.get("observed_at")
        return datetime.fromisoformat(text) if text else None

    def envelope(self) -> dict[str, Any]:
        """The stored JSON form."""
        try:
            body, encoding = self.body.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            body, encoding = base64.b64encode(self.body).decode("ascii"), "base64"
        return {
            "format": FORMAT_VERSION,
            "source": self.source,
            "method": "GET",
            "path": self.path,
            "params": self.params,
            "status": self.status,
            "headers": self.headers,
            "fetched_at": self.fetched_at.isoformat(),
            "job_id": self.job_id,
            "context": self.context,
            "body_sha256": hashlib.sha256(self.body).hexdigest(),
            "body_encoding": encoding,
            "body": body,
        }

    @classmethod
    def from_envelope(cls, data: Mapping[str, Any]) -> ArchivedResponse:
        """Read a stored envelope back; ValueError if it is not one."""
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(f"unknown bronze format {data.get('format')!r}")
        raw = data["body"]
        body = base64.b64decode(raw) if data.get("body_encoding") == "base64" else raw.encode("utf-8")
        if hashlib.sha256(body).hexdigest() != data.get("body_sha256"):
            raise ValueError("body does not match its sha256: the object is corrupt")
        return cls(
            data["source"],
            data["path"],
            dict(data.get("params") or {}),
            int(data["status"]),
            dict(data.get("headers") or {}),
            datetime.fromisoformat(data["fetched_at"]),
            data.get("job_id"),
            body,
            dict(data.get("context") or {}),
        )

    def digest(self) -> str:
        """Identity of the response: request, status and body (not the fetch time, which the key holds)."""
        h = hashlib.sha256()
        h.update(
            json.dumps(
                [self.source, self.path, self.params, self.status, self.job_id], sort_keys=True, default=str
            ).encode()
        )
        h.update(self.body)
        return h.hexdigest()[:20]


def object_key(prefix: str, record: ArchivedResponse) -> str:
    """Where a response is stored (the layout in the module docstring)."""
    at = record.fetched_at.astimezone(timezone.utc)
    job = quote(record.job_id or NO_JOB, safe="")
    return f"{prefix}/{record.source}/{at:%Y-%m-%d}/{at:%H}/{job}/{at:%H%M%S%f}-{record.digest()}.json"


def hour_prefixes(prefix: str, source: str, start: datetime, end: datetime) -> list[str]:
    """The listing prefixes covering fetch times in [start, end)."""
    hour = start.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(f"{prefix}/{source}/{hour:%Y-%m-%d}/{hour:%H}/")
        hour += timedelta(hours=1)
    return out


def _params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    # JSON-safe and as sent: httpx sends str(value) for scalars and repeats a list's items.
    out: dict[str, Any] = {}
    for name, value in (params or {}).items():
        out[str(name)] = [str(v) for v in value] if isinstance(value, (list, tuple)) else str(value)
    return out


class BronzeArchive:
    """Writes and reads bronze objects in one bucket (boto3 S3 client, any S3-compatible store)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        prefix: str = "bronze",
        *,
        create_bucket: bool = False,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.s3 = s3
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._create_bucket = create_bucket
        self._clock = clock
        self._bucket_checked = False
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> BronzeArchive:
        """The archive configured by S3_ENDPOINT_URL, S3_BUCKET, S3_REGION, ARCHIVE_*."""
        import boto3
        from botocore.config import Config

        config = Config(
            connect_timeout=settings.archive_timeout_seconds,
            read_timeout=settings.archive_timeout_seconds,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        s3 = boto3.client(
            "s3", endpoint_url=settings.s3_endpoint_url or None, region_name=settings.s3_region, config=config
        )
        return cls(s3, settings.s3_bucket, settings.archive_prefix, create_bucket=settings.archive_create_bucket)

    # --- writing ---------------------------------------------------------------------------------

    def record_response(
        self, api: str, path: str, params: Mapping[str, Any] | None, response: httpx.Response
    ) -> str | None:
        """The `UpstreamHttp` hook: archive one raw response; return its key (None if it failed).

        Runs in the request's thread, so the job id and the job's observation time come from
        the log context the job runner set. Never raises.
        """
        try:
            context = current_context()
            headers = {k: v for k, v in response.headers.items() if k.lower() in KEPT_HEADERS}
            kept_context = {k: context[k] for k in ("observed_at", "trace_id") if context.get(k)}
            record = ArchivedResponse(
                api,
                path,
                _params(params),
                response.status_code,
                headers,
                self._clock(),
                context.get("job_id"),
                response.content,
                kept_context,
            )
            return self.write(record)
        except Exception as exc:
            metrics.count(
                "crawler_archive_writes",
                outcome="failed",
                source=api,
                description="Bronze archive writes by outcome (written, duplicate, failed)",
            )
            log.warning("bronze archive: could not archive %s %s: %s", api, path, exc)
            return None

    def record_job(
        self,
        job_id: str,
        job_type: str,
        token_type: str,
        message: bytes,
        received_at: datetime,
        context: Mapping[str, str] | None = None,
    ) -> str | None:
        """Archive the job message of one job attempt as received; return its key (None if it failed).

        Stored like a response (source `job`, path `/<job_type>/<token_type>`, status 200,
        fetched at `received_at`), so a redelivered job's attempt is a new object and the
        same attempt archived twice is one. Never raises.
        """
        try:
            record = ArchivedResponse(
                JOB_SOURCE,
                f"/{job_type}/{token_type}",
                {},
                200,
                {"content-type": "application/json"},
                received_at,
                job_id,
                message,
                {k: v for k, v in (context or {}).items() if v},
            )
            return self.write(record)
        except Exception as exc:
            metrics.count(
                "crawler_archive_writes",
                outcome="failed",
                source=JOB_SOURCE,
                description="Bronze archive writes by outcome (written, duplicate, failed)",
            )
            log.warning("bronze archive: could not archive job %s: %s", job_id, exc)
            return None

    def write(self, record: ArchivedResponse) -> str:
        """Store a record once; an existing object with the same key is left as it is."""
        from botocore.exceptions import ClientError

        self._ensure_bucket()
        key = object_key(self.prefix, record)
        body = json.dumps(record.envelope(), separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*")
            outcome = "written"
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise
            outcome = "duplicate"
        metrics.count(
            "crawler_archive_writes",
            outcome=outcome,
            source=record.source,
            description="Bronze archive writes by outcome (written, duplicate, failed)",
        )
        return key

    def write_blob(self, key: str, body: bytes, content_type: str) -> str:
        """Store an uploaded file under `<prefix>/<key>` once (an existing object is left as it is)."""
        from botocore.exceptions import ClientError

        self._ensure_bucket()
        full_key = f"{self.prefix}/{key.lstrip('/')}"
        try:
            self.s3.put_object(Bucket=self.bucket, Key=full_key, Body=body, ContentType=content_type, IfNoneMatch="*")
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")) not in (
                "PreconditionFailed",
                "412",
                "ConditionalRequestConflict",
            ):
                raise
        return full_key

    def _ensure_bucket(self) -> None:
        if self._bucket_checked or not self._create_bucket:
            return
        from botocore.exceptions import ClientError

        with self._lock:
            if self._bucket_checked:
                return
            try:
                self.s3.head_bucket(Bucket=self.bucket)
            except ClientError:
                try:
                    self.s3.create_bucket(Bucket=self.bucket)
                except ClientError as exc:  # created meanwhile by another process
                    if exc.response.get("Error", {}).get("Code") not in (
                        "BucketAlreadyOwnedByYou",
                        "BucketAlreadyExists",
                    ):
                        raise
            self._bucket_checked = True

    # --- reading ---------------------------------------------------------------------------------

    def keys(self, source: str, start: datetime, end: datetime) -> Iterator[str]:
        """Keys of `source`'s responses in the hours overlapping [start, end), in key order."""
        paginator = self.s3.get_paginator("list_objects_v2")
        for hour in hour_prefixes(self.prefix, source, start, end):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=hour):
                for item in page.get("Contents", ()):
                    yield item["Key"]

    def read(self, key: str) -> ArchivedResponse:
        """One stored response."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return ArchivedResponse.from_envelope(json.loads(body))

    def responses(self, sources: list[str], start: datetime, end: datetime) -> list[ArchivedResponse]:
        """Every response of these sources fetched in [start, end), oldest first (a job message
        before the responses fetched in the same microsecond: it came first)."""
        found = []
        for source in sources:
            for key in self.keys(source, start, end):
                record = self.read(key)
                if start <= record.fetched_at < end:
                    found.append(record)
        found.sort(key=lambda r: (r.fetched_at, r.source != JOB_SOURCE, r.source, r.path))
        return found


def job_segment(job_id: str | None) -> str:
    """The key segment of a job id (reversible: `unquote`)."""
    return quote(job_id or NO_JOB, safe="")


def job_from_segment(segment: str) -> str | None:
    """The job id a key segment stands for."""
    job = unquote(segment)
    return None if job == NO_JOB else job
