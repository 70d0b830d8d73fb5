"""Security audits: GoPlus token security for tokens whose price and profile committed.

Triggered by the trending job's completion event on price-crawler.audit.request (a job
message `{"job_type": "audit", "token_type": "trending", "token_keys": [...]}`), or by an
explicit audit job naming any known token by key or contract.

- A token is audited only when it is stored **and** has a committed price: anything else
  is a per-token failure with its reason. When none of the named tokens is known at all,
  the message can never succeed: `UnknownToken` (400, dead letter, reason in the body).
- Tokens are grouped by chain; GoPlus is asked once per batch (GOPLUS_BATCH_SIZE
  addresses) on its EVM endpoint with the numeric chain id, or on its Solana endpoint.
  Native coins have no contract to audit; chains GoPlus does not cover are failures.
- Reports (score from docs/audit-score.md, `is_verified`, report URL, raw flags), all
  stamped with the job's one check time (`audited_at`), are stored in one transaction as
  the current audit per (token, provider): a redelivered job overwrites them, never
  duplicates.
- GoPlus answers HTTP 200 with error codes: 4029 is a rate limit, 2018 an unsupported
  chain, an empty `result` means no data. When no token could be audited because GoPlus
  failed, the job raises (429/503) and KafkaSource retries it.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared.crawler import store
from shared.crawler.domain import chains
from shared.crawler.domain.normalize_goplus import OK_CODES, audit_from_goplus, goplus_result_entry
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import NATIVE_PREFIX, is_native_key, token_key
from shared.crawler.job_runner import JobContext, JobOutcome
from shared.crawler.jobs import JobMessage
from shared.crawler.models import AuditReport, TokenFailure
from shared.crawler.pipelines.source_ledger import SourceLedger
from shared.errors import BadMessage, CrawlerError, UnknownToken
from shared.observability.logging import log_context
from shared.upstream import GoPlusClient

log = logging.getLogger(__name__)

GOPLUS_SOLANA = "solana"  # `goplus_chain_id` of Solana: its own endpoint and schema


@dataclass(frozen=True, slots=True)
class AuditTarget:
    """One stored token and the contract GoPlus audits for it."""

    key: str
    chain: str
    address: str


def audit_tokens(ctx: JobContext) -> JobOutcome:
    """Audit the tokens the job names with GoPlus and store one current report per token."""
    job = ctx.job
    keys, failures = requested_keys(job)
    named_elsewhere = len(failures)  # symbols and malformed keys still count as requested
    if not keys:
        raise BadMessage(
            "audit job names no token: expected token_keys or contracts"
            + (f" ({len(failures)} unusable)" if failures else "")
        )

    settings = ctx.resources.settings
    with ctx.resources.db.connection() as conn:
        known = store.tokens_by_key(conn, keys)
        priced = store.latest_prices(conn, list(known), settings.price_stale_after_seconds) if known else {}
        audited_at = store.audit_times(conn, list(known), Source.GOPLUS.value) if known else {}
    if not known:
        shown = ", ".join(keys[:5]) + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")
        raise UnknownToken(
            f"unknown token(s) {shown}: no profile was ever committed for them, so there is nothing to audit"
        )

    targets: list[AuditTarget] = []
    fresh: list[str] = []
    for key in keys:
        token = known.get(key)
        if token is None:
            failures.append(TokenFailure(key, "unknown token: no profile committed for it"))
        elif is_native_key(key) or not (token.chain and token.contract):
            failures.append(TokenFailure(key, "native coin: no contract to audit"))
        elif key not in priced:
            failures.append(TokenFailure(key, "no committed price: audits run only after price and metadata committed"))
        elif key in audited_at and ctx.received_at - audited_at[key] < timedelta(
            seconds=settings.audit_refresh_seconds
        ):
            fresh.append(key)  # GoPlus' budget is small and a contract's risk flags change slowly
        else:
            targets.append(AuditTarget(key, token.chain, token.contract))

    ledger = SourceLedger()
    # One check time per job, published so bronze keeps it with each answer (replay stamps the same).
    checked_at = datetime.now(timezone.utc)
    with log_context(observed_at=checked_at.isoformat()):
        reports = fetch_audits(ctx.resources.upstream.goplus, targets, ledger, checked_at)
    audited = {r.token_key for r in reports}
    failures += [ledger.failure(t.key) for t in targets if t.key not in audited]
    if targets and not reports and (error := ledger.retryable_error()):
        raise error  # GoPlus failed for every token: the delivery policy retries

    with ctx.resources.db.transaction() as conn:
        stored = store.upsert_audits(conn, reports, ctx.job_id)
    return JobOutcome(
        requested=len(keys) + named_elsewhere,
        succeeded=len(reports) + len(fresh),
        failures=failures,
        rows_upserted={"token_audits": stored},
        details={
            "audited": stored,
            "still_fresh": len(fresh),
            "scores": {r.token_key: str(r.score) for r in reports[:50]},
        },
    )


def requested_keys(job: JobMessage) -> tuple[list[str], list[TokenFailure]]:
    """The canonical token keys an audit job names (token keys, then contracts), each once."""
    keys: dict[str, None] = {}
    failures = [TokenFailure(s, "audit jobs name tokens by token key or contract, not by symbol") for s in job.symbols]
    named: list[tuple[str, str, str]] = []
    for key in job.token_keys:
        chain, address = key.split(":", 1)
        named.append((chain, address, key))
    named += [(c.chain, c.address, f"{c.chain}:{c.address}") for c in job.contracts]
    for chain, address, ref in named:
        if chain == NATIVE_PREFIX:
            keys.setdefault(ref)  # looked up as is; reported as a native coin if known
            continue
        try:
            keys.setdefault(token_key(chain, address))
        except ValueError as exc:
            failures.append(TokenFailure(ref, f"not a token key: {exc}"))
    return list(keys), failures


def fetch_audits(
    goplus: GoPlusClient, targets: list[AuditTarget], ledger: SourceLedger, audited_at: datetime | None = None
) -> list[AuditReport]:
    """GoPlus reports for these tokens, one request per batch per chain; failures go to `ledger`.

    Every report is stamped `audited_at` (default: now); the bronze replay runs this too.
    """
    audited_at = audited_at or datetime.now(timezone.utc)
    source = Source.GOPLUS.value
    by_chain_id: dict[str, list[AuditTarget]] = defaultdict(list)
    for target in targets:
        chain_id = chains.goplus_chain_id(target.chain)
        if chain_id is None:
            ledger.token_failed(target.key, f"goplus does not cover chain {target.chain}")
        else:
            by_chain_id[chain_id].append(target)

    reports: list[AuditReport] = []
    for chain_id, members in by_chain_id.items():
        keys = [t.key for t in members]
        if ledger.is_down(source):
            ledger.skipped(source, keys)
            continue
        addresses = [t.address for t in members]
        try:
            if chain_id == GOPLUS_SOLANA:
                results = goplus.solana_token_security(addresses)
            else:
                results = goplus.token_security(chain_id, addresses)
        except CrawlerError as exc:
            ledger.source_failed(source, exc, keys)
            continue
        # The client already checked the envelope's code; the lookup (EVM keys case-insensitive) is shared.
        envelope = {"code": min(OK_CODES), "result": results}
        for target in members:
            entry = goplus_result_entry(envelope, target.chain, target.address, target.key)
            report = (
                entry
                if isinstance(entry, TokenFailure)
                else audit_from_goplus(target.key, target.chain, target.address, entry, audited_at)
            )
            if isinstance(report, TokenFailure):
                ledger.token_failed(target.key, report.reason)
            else:
                reports.append(report)
    return reports
