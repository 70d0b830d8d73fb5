"""Top-100 metadata from CoinGecko: the set, identities and contracts, then details.

A refresh (no tokens named) costs three requests: `/coins/markets` (rank, market cap,
logo), the stablecoin category, and `/coins/list?include_platform=true` (contracts per
chain). It upserts the 100 tokens and the set membership in one transaction, then fans
out detail jobs (`/coins/{id}`: links, socials, tags, decimals) of a few tokens each
onto the metadata topic, so CoinGecko's small rate limit is met by KafkaSource's
backoff instead of one long request.

The refresh records itself (`token_set_refreshes`) in the set's transaction and marks its
detail jobs requested once Kafka confirmed them. A refresh request that finds the set
fresh skips only when those detail jobs went out; otherwise (the publish failed after the
commit, or the process died in between) it publishes them, under the same job ids, for the
committed set without asking CoinGecko again.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone

from shared.crawler import store
from shared.crawler.contracts import JOB_MESSAGE_SCHEMA
from shared.crawler.domain.normalize_coingecko import apply_coin_detail, top100_profiles
from shared.crawler.domain.tokens import configured_stablecoin_rule
from shared.crawler.job_runner import JobContext, JobOutcome
from shared.crawler.models import TokenFailure, TokenProfile
from shared.errors import CrawlerError
from shared.events import OutboundEvent

log = logging.getLogger(__name__)

TOKEN_SET = "top100"
DETAIL_JOB_SIZE = 10
DETAIL_EVENT_TYPE = "price-crawler.metadata.detail.requested"


def refresh_top100_metadata(ctx: JobContext) -> JobOutcome:
    """Refresh the top-100 set, or enrich the tokens a detail job names."""
    if ctx.job.token_keys:
        return enrich_details(ctx, ctx.job.token_keys)
    settings, coingecko = ctx.resources.settings, ctx.resources.upstream.coingecko
    with ctx.resources.db.connection() as conn:
        refresh = store.last_refresh(conn, TOKEN_SET)
    if refresh and ctx.received_at - refresh.refreshed_at < timedelta(seconds=settings.metadata_min_refresh_seconds):
        if not refresh.details_requested:
            return _finish_refresh(ctx, refresh)
        # Bootstrap requests from several ticks coalesce into the one refresh that ran.
        return JobOutcome(
            requested=0,
            succeeded=0,
            message=f"top-100 set refreshed at {refresh.refreshed_at.isoformat()}; skipped",
            details={"skipped": "fresh"},
        )

    markets = coingecko.top_markets(limit=min(250, settings.top100_size + 50))
    try:
        stablecoin_ids = coingecko.stablecoin_ids()
    except CrawlerError as exc:  # the configured symbol list still applies
        log.warning("stablecoin category unavailable, using the configured list only: %s", exc)
        stablecoin_ids = frozenset()
    coins_list = coingecko.coins_list_with_platforms()
    excluded: list[TokenFailure] = []
    profiles, failures = top100_profiles(
        markets,
        coins_list,
        settings.stablecoin_symbols,
        stablecoin_ids,
        limit=settings.top100_size,
        variant_pattern=settings.stablecoin_variant_regex,
        excluded=excluded,
    )
    for coin in excluded:
        log.info("not in the top-100 set: %s (%s)", coin.ref, coin.reason)
    with ctx.resources.db.transaction() as conn:
        keys = store.upsert_tokens(conn, profiles)
        ranked = [keys[p.key] for p in profiles]
        store.set_membership(conn, TOKEN_SET, ranked, complete=True)
        store.record_refresh(conn, TOKEN_SET, ctx.job_id)
        store.run_maintenance(conn, settings.token_prices_retention_days, settings.job_logs_retention_days)
    detail_jobs = _request_details(ctx, ctx.job_id, ranked)
    return JobOutcome(
        requested=len(profiles) + len(failures),
        succeeded=len(profiles),
        failures=failures,
        rows_upserted={"tokens": len(profiles)},
        details={
            "top100": len(ranked),
            "detail_jobs": detail_jobs,
            "stablecoins_excluded": {c.ref: c.reason for c in excluded},
        },
    )


def enrich_details(ctx: JobContext, keys: list[str]) -> JobOutcome:
    """Add links, socials, tags and decimals from `/coins/{id}` to already stored tokens."""
    coingecko = ctx.resources.upstream.coingecko
    with ctx.resources.db.connection() as conn:
        known = store.tokens_by_key(conn, keys)
    failures = [TokenFailure(k, "unknown token: not stored") for k in keys if k not in known]
    enriched: list[TokenProfile] = []
    for key, token in known.items():
        if not token.coingecko_id:
            failures.append(TokenFailure(key, "no CoinGecko id to fetch details for"))
            continue
        # A rate limit here propagates (429): KafkaSource retries the whole detail job later.
        detail = coingecko.coin_detail(token.coingecko_id)
        base = TokenProfile(
            key=key,
            symbol=token.symbol,
            name=None,
            chain=token.chain,
            address=token.contract,
            coingecko_id=token.coingecko_id,
            source="coingecko",
        )
        enriched.append(apply_coin_detail(base, detail))
    # The detail carries CoinGecko's categories: a bridged stablecoin ("Bridged USDC") is
    # marked now and leaves the priced set (store.set_members skips is_stablecoin).
    stable: dict[str, str] = {}
    for profile in enriched:
        rule = configured_stablecoin_rule(ctx.resources.settings, profile.symbol, profile.coingecko_id, profile.tags)
        if rule is not None:
            stable[profile.key] = rule
            log.info("%s excluded as a stablecoin: %s", profile.key, rule)
    with ctx.resources.db.transaction() as conn:
        store.upsert_tokens(conn, enriched, stablecoin_keys=frozenset(stable))
    return JobOutcome(
        requested=len(keys), succeeded=len(enriched), failures=failures, rows_upserted={"tokens": len(enriched)}
    )


def _finish_refresh(ctx: JobContext, refresh: store.SetRefresh) -> JobOutcome:
    """Publish the detail jobs of a committed refresh whose fan-out was never confirmed."""
    with ctx.resources.db.connection() as conn:
        ranked = [token.key for token in store.set_members(conn, TOKEN_SET)]
    log.info(
        "top-100 set refreshed by %s at %s without its detail jobs: publishing them",
        refresh.job_id,
        refresh.refreshed_at.isoformat(),
    )
    detail_jobs = _request_details(ctx, refresh.job_id, ranked)
    return JobOutcome(
        requested=0,
        succeeded=0,
        message=f"top-100 set refreshed at {refresh.refreshed_at.isoformat()}; published its {detail_jobs} detail jobs",
        details={"skipped": "fresh", "detail_jobs": detail_jobs, "refreshed_by": refresh.job_id},
    )


def _request_details(ctx: JobContext, refresh_job_id: str, keys: list[str]) -> int:
    """Publish the detail jobs of `refresh_job_id`'s refresh, then mark them requested."""
    settings = ctx.resources.settings
    now = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    events = []
    for i in range(0, len(keys), DETAIL_JOB_SIZE):
        # Ids derive from the refresh, so a republished fan-out repeats them (consumers deduplicate).
        job_id = f"{refresh_job_id}:detail:{i // DETAIL_JOB_SIZE}"
        job = {
            "job_type": "metadata",
            "token_type": "top100",
            "symbols": [],
            "timestamp": now,
            "token_keys": keys[i : i + DETAIL_JOB_SIZE],
            "job_id": job_id,
            "traceparent": ctx.traceparent,
        }
        events.append(
            OutboundEvent(
                type=DETAIL_EVENT_TYPE,
                source="/price-crawler/metadata",
                data=job,
                key="top100-detail",
                id=job_id,
                extensions={"traceparent": ctx.traceparent},
                dataschema=JOB_MESSAGE_SCHEMA,
            )
        )
    ctx.resources.producer.publish(settings.metadata_topic, events)
    with ctx.resources.db.connection() as conn:
        store.details_requested(conn, TOKEN_SET, refresh_job_id)
    return len(events)
