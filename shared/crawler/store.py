"""Reads and writes of the crawler's tables.

Every write takes an open connection inside the caller's transaction, so a job's
writes commit or roll back together (crash safety). Every batch write is a single
statement over `unnest(...)` arrays: one round trip whatever the batch size.
Batches are de-duplicated before `ON CONFLICT`, which rejects a key seen twice in
one statement.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.crawler.models import AuditReport, PriceQuote, TokenFailure, TokenProfile
from shared.db.connection import Connection
from shared.json_encoding import dumps
from shared.upstream.jsonbody import clean_text

Conn = Connection  # what the pool lends: pg8000 with cached statement translation


@dataclass(frozen=True, slots=True)
class KnownToken:
    """A token as stored: enough to price or audit it."""

    key: str
    symbol: str
    chain: str | None
    contract: str | None
    coingecko_id: str | None
    contracts: dict[str, str]


# --- tokens -----------------------------------------------------------------------------------


def resolve_token_keys(conn: Conn, profiles: Sequence[TokenProfile]) -> dict[str, str]:
    """Map each profile's own key to the key the token already has, if any of its contracts is known.

    A token first stored from CoinGecko under its Ethereum contract and later discovered
    on BSC by DexScreener keeps one row: the BSC address resolves to the existing key.
    """
    chains, addresses, owners = [], [], []
    for profile in profiles:
        for contract in _all_contracts(profile):
            chains.append(contract[0])
            addresses.append(contract[1])
            owners.append(profile.key)
    resolved = {p.key: p.key for p in profiles}
    if not chains:
        return resolved
    rows = conn.run(
        "SELECT c.owner, tc.token_key FROM unnest(CAST(:chains AS text[]), CAST(:addresses AS text[]),"
        " CAST(:owners AS text[])) AS c(chain, address, owner)"
        " JOIN token_contracts tc ON tc.chain = c.chain AND tc.address = c.address",
        chains=chains,
        addresses=addresses,
        owners=owners,
    )
    existing = {
        row[0]
        for row in conn.run(
            "SELECT token_key FROM tokens WHERE token_key = ANY(CAST(:keys AS text[]))", keys=list(resolved)
        )
    }
    for owner, stored_key in rows:
        # The profile's own key wins when it already exists; otherwise adopt the stored identity.
        if owner not in existing:
            resolved[owner] = stored_key
    return resolved


def upsert_tokens(
    conn: Conn, profiles: Sequence[TokenProfile], *, stablecoin_keys: frozenset[str] = frozenset()
) -> dict[str, str]:
    """Insert or overwrite token rows and their contracts; return profile key → stored key."""
    if not profiles:
        return {}
    resolved = resolve_token_keys(conn, profiles)
    by_key: dict[str, TokenProfile] = {}
    for profile in profiles:  # last one wins within a batch
        by_key[resolved[profile.key]] = profile
    keys = list(by_key)
    rows = [by_key[k] for k in keys]
    conn.run(
        """
        INSERT INTO tokens AS t (token_key, symbol, name, chain, contract, decimals, logo_url, contracts,
                                 websites, socials, tags, coingecko_id, market_cap_usd, market_cap_rank,
                                 main_pool, markets, is_stablecoin, source, last_updated_at)
        SELECT token_key, symbol, name, chain, contract, decimals, logo_url, CAST(contracts AS jsonb),
               CAST(websites AS jsonb), CAST(socials AS jsonb), COALESCE(CAST(tags AS text[]), '{}'), coingecko_id,
               market_cap_usd, market_cap_rank, CAST(main_pool AS jsonb), CAST(markets AS jsonb), is_stablecoin,
               source, now()
        FROM unnest(CAST(:token_key AS text[]), CAST(:symbol AS text[]), CAST(:name AS text[]),
                    CAST(:chain AS text[]), CAST(:contract AS text[]), CAST(:decimals AS int[]),
                    CAST(:logo_url AS text[]), CAST(:contracts AS text[]), CAST(:websites AS text[]),
                    CAST(:socials AS text[]), CAST(:tags AS text[]), CAST(:coingecko_id AS text[]),
                    CAST(:market_cap_usd AS numeric[]), CAST(:market_cap_rank AS int[]), CAST(:main_pool AS text[]),
                    CAST(:markets AS text[]), CAST(:is_stablecoin AS boolean[]), CAST(:source AS text[]))
             AS x(token_key, symbol, name, chain, contract, decimals, logo_url, contracts, websites, socials, tags,
                  coingecko_id, market_cap_usd, market_cap_rank, main_pool, markets, is_stablecoin, source)
        ON CONFLICT (token_key) DO UPDATE SET
            symbol = EXCLUDED.symbol,
            name = COALESCE(EXCLUDED.name, t.name),
            chain = COALESCE(EXCLUDED.chain, t.chain),
            contract = COALESCE(EXCLUDED.contract, t.contract),
            decimals = COALESCE(EXCLUDED.decimals, t.decimals),
            logo_url = COALESCE(EXCLUDED.logo_url, t.logo_url),
            contracts = t.contracts || EXCLUDED.contracts,
            websites = CASE WHEN EXCLUDED.websites = '[]'::jsonb THEN t.websites ELSE EXCLUDED.websites END,
            socials = CASE WHEN EXCLUDED.socials = '[]'::jsonb THEN t.socials ELSE EXCLUDED.socials END,
            tags = CASE WHEN EXCLUDED.tags = '{}' THEN t.tags ELSE EXCLUDED.tags END,
            coingecko_id = COALESCE(EXCLUDED.coingecko_id, t.coingecko_id),
            market_cap_usd = COALESCE(EXCLUDED.market_cap_usd, t.market_cap_usd),
            market_cap_rank = COALESCE(EXCLUDED.market_cap_rank, t.market_cap_rank),
            main_pool = COALESCE(EXCLUDED.main_pool, t.main_pool),
            markets = CASE WHEN EXCLUDED.markets = '[]'::jsonb THEN t.markets ELSE EXCLUDED.markets END,
            -- Set from a coin's categories (metadata detail jobs); an upsert without categories
            -- (the top-100 refresh) keeps it rather than pricing a stablecoin until the next detail.
            is_stablecoin = EXCLUDED.is_stablecoin OR (t.is_stablecoin AND EXCLUDED.tags = '{}'),
            source = EXCLUDED.source,
            last_updated_at = now()
        """,
        token_key=keys,
        symbol=[p.symbol for p in rows],
        name=[p.name for p in rows],
        chain=[p.chain for p in rows],
        contract=[p.address for p in rows],
        decimals=[p.decimals for p in rows],
        logo_url=[p.logo_url for p in rows],
        contracts=[json.dumps({c: a for c, a in _all_contracts(p)}) for p in rows],
        websites=[json.dumps(list(p.websites)) for p in rows],
        socials=[json.dumps([{"type": kind, "url": url} for kind, url in p.socials]) for p in rows],
        tags=[_pg_text_array(p.tags) for p in rows],
        coingecko_id=[p.coingecko_id for p in rows],
        market_cap_usd=[p.market_cap_usd for p in rows],
        market_cap_rank=[p.market_cap_rank for p in rows],
        main_pool=[dumps(p.main_pool) if p.main_pool else None for p in rows],
        markets=[dumps(list(p.markets)) for p in rows],
        is_stablecoin=[k in stablecoin_keys for k in keys],
        source=[p.source or "unknown" for p in rows],
    )
    contract_rows: dict[tuple[str, str], tuple[str, int | None]] = {}
    for key, profile in zip(keys, rows):
        decimals = {c.chain: c.decimals for c in profile.contracts}
        for chain, address in _all_contracts(profile):
            contract_rows[(chain, address)] = (
                key,
                decimals.get(chain, profile.decimals if chain == profile.chain else None),
            )
    if contract_rows:
        conn.run(
            "INSERT INTO token_contracts AS tc (chain, address, token_key, decimals)"
            " SELECT * FROM unnest(CAST(:chain AS text[]), CAST(:address AS text[]), CAST(:token_key AS text[]),"
            " CAST(:decimals AS int[]))"
            " ON CONFLICT (chain, address) DO UPDATE SET decimals = COALESCE(EXCLUDED.decimals, tc.decimals)",
            chain=[c for c, _ in contract_rows],
            address=[a for _, a in contract_rows],
            token_key=[v[0] for v in contract_rows.values()],
            decimals=[v[1] for v in contract_rows.values()],
        )
    return {p.key: resolved[p.key] for p in profiles}


def set_membership(conn: Conn, token_set: str, ranked_keys: Sequence[str], *, complete: bool) -> None:
    """Record that these tokens are in `token_set` (rank = position).

    With `complete=True` the list is the whole set: members missing from it are marked
    as having left (left_at), never deleted.
    """
    keys = list(dict.fromkeys(ranked_keys))
    if keys:
        conn.run(
            "INSERT INTO token_set_members AS m (token_set, token_key, rank)"
            " SELECT :set, k, r FROM unnest(CAST(:keys AS text[]), CAST(:ranks AS int[])) AS x(k, r)"
            " ON CONFLICT (token_set, token_key) DO UPDATE SET rank = EXCLUDED.rank, last_seen_at = now(),"
            " left_at = NULL, joined_at = CASE WHEN m.left_at IS NULL THEN m.joined_at ELSE now() END",
            set=token_set,
            keys=keys,
            ranks=list(range(1, len(keys) + 1)),
        )
    if complete:
        conn.run(
            "UPDATE token_set_members SET left_at = now() WHERE token_set = :set AND left_at IS NULL"
            " AND NOT (token_key = ANY(CAST(:keys AS text[])))",
            set=token_set,
            keys=keys,
        )


def has_members(conn: Conn, token_set: str) -> bool:
    """True when the set has at least one current member."""
    return bool(
        conn.run(
            "SELECT EXISTS (SELECT 1 FROM token_set_members WHERE token_set = :s AND left_at IS NULL)", s=token_set
        )[0][0]
    )


def last_refreshed(conn: Conn, token_set: str) -> datetime | None:
    """When the set's membership was last confirmed by a full refresh."""
    return conn.run(
        "SELECT max(last_seen_at) FROM token_set_members WHERE token_set = :s AND left_at IS NULL", s=token_set
    )[0][0]


@dataclass(frozen=True, slots=True)
class SetRefresh:
    """The last full refresh of a token set: which job, when, and whether its detail jobs were published."""

    token_set: str
    job_id: str
    refreshed_at: datetime
    details_requested: bool


def record_refresh(conn: Conn, token_set: str, job_id: str) -> None:
    """Record, in the refresh's transaction, that `job_id` refreshed the set; its details are not yet requested."""
    conn.run(
        "INSERT INTO token_set_refreshes AS r (token_set, job_id, refreshed_at, details_requested_at)"
        " VALUES (:s, :j, now(), NULL) ON CONFLICT (token_set) DO UPDATE SET job_id = EXCLUDED.job_id,"
        " refreshed_at = EXCLUDED.refreshed_at, details_requested_at = NULL",
        s=token_set,
        j=job_id,
    )


def details_requested(conn: Conn, token_set: str, job_id: str) -> None:
    """Mark the detail jobs of `job_id`'s refresh as published (a newer refresh is left alone)."""
    conn.run(
        "UPDATE token_set_refreshes SET details_requested_at = now() WHERE token_set = :s AND job_id = :j",
        s=token_set,
        j=job_id,
    )


def last_refresh(conn: Conn, token_set: str) -> SetRefresh | None:
    """The set's last recorded full refresh, if any."""
    rows = conn.run(
        "SELECT token_set, job_id, refreshed_at, details_requested_at IS NOT NULL"
        " FROM token_set_refreshes WHERE token_set = :s",
        s=token_set,
    )
    return SetRefresh(*rows[0]) if rows else None


def tokens_by_symbol(conn: Conn, symbols: Sequence[str], token_set: str) -> dict[str, KnownToken]:
    """Current members of `token_set` by upper-case symbol (best rank wins on a clash)."""
    if not symbols:
        return {}
    rows = conn.run(
        "SELECT DISTINCT ON (upper(t.symbol)) upper(t.symbol), t.token_key, t.symbol, t.chain, t.contract,"
        " t.coingecko_id, t.contracts"
        " FROM tokens t JOIN token_set_members m ON m.token_key = t.token_key"
        " WHERE m.token_set = :set AND m.left_at IS NULL AND NOT t.is_stablecoin"
        " AND upper(t.symbol) = ANY(CAST(:symbols AS text[]))"
        " ORDER BY upper(t.symbol), m.rank NULLS LAST",
        set=token_set,
        symbols=[s.upper() for s in symbols],
    )
    return {r[0]: _known(r[1:]) for r in rows}


def tokens_by_key(conn: Conn, keys: Sequence[str]) -> dict[str, KnownToken]:
    """Stored tokens by key; unknown keys are absent from the result."""
    if not keys:
        return {}
    rows = conn.run(
        "SELECT token_key, symbol, chain, contract, coingecko_id, contracts FROM tokens"
        " WHERE token_key = ANY(CAST(:keys AS text[]))",
        keys=list(keys),
    )
    return {r[0]: _known(r) for r in rows}


def set_members(conn: Conn, token_set: str, limit: int | None = None) -> list[KnownToken]:
    """Current members of a set in rank order, stablecoins excluded."""
    return [token for token, _ in set_members_with_price_source(conn, token_set, limit)]


def set_members_with_price_source(
    conn: Conn, token_set: str, limit: int | None = None
) -> list[tuple[KnownToken, str | None]]:
    """Current members in rank order (stablecoins excluded), each with the source of its latest price."""
    rows = conn.run(
        "SELECT t.token_key, t.symbol, t.chain, t.contract, t.coingecko_id, t.contracts, l.source"
        " FROM tokens t JOIN token_set_members m ON m.token_key = t.token_key"
        " LEFT JOIN token_latest_prices l ON l.token_key = t.token_key"
        " WHERE m.token_set = :set AND m.left_at IS NULL AND NOT t.is_stablecoin"
        " ORDER BY m.rank NULLS LAST, t.token_key LIMIT :limit",
        set=token_set,
        limit=limit,
    )
    return [(_known(r), r[6]) for r in rows]


def _known(row: Sequence[Any]) -> KnownToken:
    contracts = row[5] if isinstance(row[5], dict) else json.loads(row[5] or "{}")
    return KnownToken(
        key=row[0], symbol=row[1], chain=row[2], contract=row[3], coingecko_id=row[4], contracts=contracts
    )


# --- prices -----------------------------------------------------------------------------------


def insert_prices(conn: Conn, quotes: Iterable[PriceQuote], job_id: str | None) -> int:
    """Append observations and move each token's latest price forward; return rows inserted."""
    return write_prices(conn, quotes, job_id).inserted


@dataclass(frozen=True, slots=True)
class PricesWritten:
    """What `write_prices` did: rows inserted, and every observation as it is now stored."""

    inserted: int
    stored: list[PriceQuote]


def write_prices(conn: Conn, quotes: Iterable[PriceQuote], job_id: str | None) -> PricesWritten:
    """Append observations and move each token's latest price forward.

    One statement: the insert into `token_prices` feeds the upsert of
    `token_latest_prices`, which never goes back in time, and queues the ticks actually
    inserted for the gold candles (`token_candle_ticks`, 0004_deferred_candles.sql);
    `fold_candle_ticks` folds them in its own transaction, off the path from a tick to its
    committed price. A redelivered observation (same token and `observed_at`) changes
    nothing: the first one stays, in both tables, and `stored` returns it in place of the
    incoming quote, so what is announced is what was committed.
    """
    batch: dict[tuple[str, datetime], PriceQuote] = {}
    for quote in quotes:
        if quote.price_usdt <= 0:
            raise ValueError(f"refusing to store non-positive price for {quote.token_key}: {quote.price_usdt}")
        batch[(quote.token_key, quote.observed_at)] = quote
    if not batch:
        return PricesWritten(0, [])
    rows = list(batch.values())
    result = conn.run(
        """
        WITH incoming AS (
            SELECT * FROM unnest(CAST(:k AS text[]), CAST(:p AS numeric[]), CAST(:s AS text[]),
                                 CAST(:t AS timestamptz[])) AS x(token_key, price_usdt, source, observed_at)
        ), inserted AS (
            INSERT INTO token_prices (token_key, price_usdt, source, observed_at, job_id)
            SELECT token_key, price_usdt, source, observed_at, :job FROM incoming
            ON CONFLICT (token_key, observed_at) DO NOTHING
            RETURNING token_key, price_usdt, source, observed_at
        ), queued AS (
            INSERT INTO token_candle_ticks (token_key, price_usdt, observed_at)
            SELECT token_key, price_usdt, observed_at FROM inserted
        ), latest AS (
            INSERT INTO token_latest_prices AS l (token_key, price_usdt, source, observed_at, job_id, updated_at)
            SELECT DISTINCT ON (token_key) token_key, price_usdt, source, observed_at, :job, now()
            FROM inserted ORDER BY token_key, observed_at DESC
            ON CONFLICT (token_key) DO UPDATE SET price_usdt = EXCLUDED.price_usdt, source = EXCLUDED.source,
                observed_at = EXCLUDED.observed_at, job_id = EXCLUDED.job_id, updated_at = now()
            WHERE EXCLUDED.observed_at >= l.observed_at
            RETURNING 1
        ), earlier AS (
            -- The redelivered observations, as stored before this statement (its snapshot): only
            -- those the insert skipped are looked up, so a batch of new prices probes the index once.
            SELECT p.token_key, p.price_usdt, p.source, p.observed_at
            FROM token_prices p JOIN (
                SELECT token_key, observed_at FROM incoming EXCEPT ALL SELECT token_key, observed_at FROM inserted
            ) skipped USING (token_key, observed_at)
        )
        SELECT token_key, price_usdt, source, observed_at, (SELECT count(*) FROM inserted) FROM earlier
        UNION ALL SELECT NULL, NULL, NULL, NULL, (SELECT count(*) FROM inserted) WHERE NOT EXISTS (SELECT 1 FROM earlier)
        """,
        k=[q.token_key for q in rows],
        p=[q.price_usdt for q in rows],
        s=[q.source for q in rows],
        t=[q.observed_at for q in rows],
        job=job_id,
    )
    earlier = {(r[0], r[3]): (r[1], r[2]) for r in result if r[0] is not None}
    stored = []
    for quote in rows:
        first = earlier.get((quote.token_key, quote.observed_at))
        stored.append(quote if first is None else dataclasses.replace(quote, price_usdt=first[0], source=first[1]))
    return PricesWritten(int(result[0][4]), stored)


def fold_candle_ticks(conn: Conn) -> int:
    """Fold every queued tick into the gold `token_candles`; return how many were folded.

    A fold holds the one fold lock until its transaction ends; a fold running elsewhere is
    waited for, never skipped: every job that queues ticks asks for a fold after its commit,
    so no tick stays queued.
    """
    return int(conn.run("SELECT fold_candle_ticks()")[0][0])


@dataclass(frozen=True, slots=True)
class LatestPrice:
    """A token's latest price with its age; `stale` when older than the configured bound."""

    token_key: str
    symbol: str
    price_usdt: Decimal
    source: str
    observed_at: datetime
    age_seconds: float
    stale: bool


def latest_prices(conn: Conn, keys: Sequence[str], stale_after_seconds: float) -> dict[str, LatestPrice]:
    """Latest prices of these tokens, each flagged stale or fresh (never passed off as fresh)."""
    rows = conn.run(
        "SELECT l.token_key, t.symbol, l.price_usdt, l.source, l.observed_at,"
        " EXTRACT(EPOCH FROM (now() - l.observed_at))::float8"
        " FROM token_latest_prices l JOIN tokens t USING (token_key)"
        " WHERE l.token_key = ANY(CAST(:keys AS text[]))",
        keys=list(keys),
    )
    return {
        r[0]: LatestPrice(r[0], r[1], r[2], r[3], r[4], float(r[5]), float(r[5]) > stale_after_seconds) for r in rows
    }


def last_prices(conn: Conn, keys: Sequence[str]) -> dict[str, PriceQuote]:
    """Each token's latest stored price (one query for the batch); unknown tokens are absent."""
    if not keys:
        return {}
    rows = conn.run(
        "SELECT l.token_key, t.symbol, l.price_usdt, l.source, l.observed_at"
        " FROM token_latest_prices l JOIN tokens t USING (token_key) WHERE l.token_key = ANY(CAST(:keys AS text[]))",
        keys=list(dict.fromkeys(keys)),
    )
    return {r[0]: PriceQuote(r[0], r[1], r[2], r[3], r[4]) for r in rows}


def prices_before(
    conn: Conn, observations: Iterable[tuple[str, datetime]], max_age_seconds: float
) -> dict[str, PriceQuote]:
    """Each token's last stored price before its given observation time, at most `max_age_seconds`
    older (one query for the batch); a token with none is absent.

    What a price observed then was judged against: a bronze replay screens each replayed price
    against the history of its own time, not against today's latest price.
    """
    wanted = dict(observations)
    if not wanted:
        return {}
    rows = conn.run(
        """
        SELECT x.token_key, t.symbol, p.price_usdt, p.source, p.observed_at
        FROM unnest(CAST(:k AS text[]), CAST(:t AS timestamptz[])) AS x(token_key, at)
        JOIN tokens t ON t.token_key = x.token_key
        CROSS JOIN LATERAL (
            SELECT price_usdt, source, observed_at FROM token_prices p
            WHERE p.token_key = x.token_key AND p.observed_at < x.at
                AND p.observed_at >= x.at - make_interval(secs => :age)
            ORDER BY p.observed_at DESC LIMIT 1
        ) p
        """,
        k=list(wanted),
        t=list(wanted.values()),
        age=max_age_seconds,
    )
    return {r[0]: PriceQuote(r[0], r[1], r[2], r[3], r[4]) for r in rows}


def oldest_latest_price_age(conn: Conn) -> list[tuple[str, float]]:
    """Per token set, the age in seconds of its stalest latest price (freshness metric)."""
    rows = conn.run(
        "SELECT m.token_set, COALESCE(EXTRACT(EPOCH FROM (now() - min(l.observed_at)))::float8, 0)"
        " FROM token_set_members m JOIN token_latest_prices l USING (token_key)"
        " WHERE m.left_at IS NULL GROUP BY m.token_set"
    )
    return [(r[0], float(r[1])) for r in rows]


# --- audits ------------------------------------------------------------------------------------


def upsert_audits(conn: Conn, reports: Sequence[AuditReport], job_id: str | None) -> int:
    """Store the current audit per (token, provider), overwriting the previous one."""
    batch = {(r.token_key, r.provider): r for r in reports}
    if not batch:
        return 0
    rows = list(batch.values())
    result = conn.run(
        """
        INSERT INTO token_audits AS a (token_key, audit_provider, audit_score, is_verified, is_honeypot, buy_tax,
                                       sell_tax, report_url, flags, audited_at, job_id, updated_at)
        SELECT k, p, sc, v, h, bt, st, u, CAST(f AS jsonb), at, :job, now()
        FROM unnest(CAST(:k AS text[]), CAST(:p AS text[]), CAST(:sc AS numeric[]), CAST(:v AS boolean[]),
                    CAST(:h AS boolean[]), CAST(:bt AS numeric[]), CAST(:st AS numeric[]), CAST(:u AS text[]),
                    CAST(:f AS text[]), CAST(:at AS timestamptz[])) AS x(k, p, sc, v, h, bt, st, u, f, at)
        ON CONFLICT (token_key, audit_provider) DO UPDATE SET
            audit_score = EXCLUDED.audit_score, is_verified = EXCLUDED.is_verified,
            is_honeypot = EXCLUDED.is_honeypot, buy_tax = EXCLUDED.buy_tax, sell_tax = EXCLUDED.sell_tax,
            report_url = EXCLUDED.report_url, flags = EXCLUDED.flags, audited_at = EXCLUDED.audited_at,
            job_id = EXCLUDED.job_id, updated_at = now()
        RETURNING 1
        """,
        k=[r.token_key for r in rows],
        p=[r.provider for r in rows],
        sc=[r.score for r in rows],
        v=[r.is_verified for r in rows],
        h=[r.is_honeypot for r in rows],
        bt=[r.buy_tax for r in rows],
        st=[r.sell_tax for r in rows],
        u=[r.report_url for r in rows],
        f=[dumps(_audit_flags(r)) for r in rows],
        at=[r.audited_at for r in rows],
        job=job_id,
    )
    return len(result)


def audit_times(conn: Conn, keys: Sequence[str], provider: str) -> dict[str, datetime]:
    """When each of these tokens was last audited by `provider` (absent: never)."""
    rows = conn.run(
        "SELECT token_key, audited_at FROM token_audits WHERE audit_provider = :p"
        " AND token_key = ANY(CAST(:keys AS text[]))",
        p=provider,
        keys=list(keys),
    )
    return {r[0]: r[1] for r in rows}


def _audit_flags(report: AuditReport) -> dict[str, Any]:
    flags = dict(report.flags)
    # Why the score is what it is, next to the provider's raw answer.
    if report.penalties or report.unknown_flags:
        flags["_score"] = {"penalties": dict(report.penalties), "unknown_flags": list(report.unknown_flags)}
    return flags


# --- job logs ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the job log says about one job."""

    job_id: str
    job_type: str
    token_type: str | None
    event_id: str | None = None


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """One attempt of a job: its number and when the job's first attempt started."""

    number: int
    first_started_at: datetime


def begin_job(conn: Conn, job: JobRecord, started_at: datetime, tokens_requested: int) -> JobAttempt:
    """Record a job as running (a redelivery bumps `attempts`); return this attempt.

    `first_started_at` is kept from the first attempt (a row written before it was
    recorded adopts this attempt's start).
    """
    rows = conn.run(
        "INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, status, event_id, started_at,"
        " first_started_at, tokens_requested) VALUES ('job', :id, :jt, :tt, 'running', :ev, :at, :at, :n)"
        " ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET attempts = j.attempts + 1,"
        " status = 'running', started_at = EXCLUDED.started_at, event_id = EXCLUDED.event_id, executed_at = now(),"
        " first_started_at = COALESCE(j.first_started_at, EXCLUDED.first_started_at)"
        " RETURNING attempts, first_started_at",
        id=job.job_id,
        jt=job.job_type,
        tt=job.token_type,
        ev=job.event_id,
        at=started_at,
        n=tokens_requested,
    )
    return JobAttempt(int(rows[0][0]), rows[0][1])


def start_job(conn: Conn, job: JobRecord, started_at: datetime, tokens_requested: int) -> int:
    """Record a job as running (a redelivery bumps `attempts`); return the attempt number."""
    return begin_job(conn, job, started_at, tokens_requested).number


def finish_job(
    conn: Conn,
    job: JobRecord,
    *,
    status: str,
    message: str | None,
    tokens_requested: int,
    tokens_succeeded: int,
    failures: Sequence[TokenFailure],
) -> None:
    """Write the job's final row and one row per token this attempt failed on (reason in `message`).

    One statement, so the job row and its token rows change together (and in one round trip).
    """
    by_ref = {_clip(f.ref, 200) or "?": _clip(f.reason) for f in failures}
    conn.run(
        """
        WITH final AS (
            INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, status, message, tokens_requested,
                                       tokens_succeeded, tokens_failed, event_id, finished_at)
            VALUES ('job', :id, :jt, :tt, :st, :msg, :req, :ok, :bad, :ev, now())
            ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET status = EXCLUDED.status,
                message = EXCLUDED.message, tokens_requested = EXCLUDED.tokens_requested,
                tokens_succeeded = EXCLUDED.tokens_succeeded, tokens_failed = EXCLUDED.tokens_failed,
                finished_at = now(), executed_at = now()
        ), priced_now AS (
            -- The token rows describe this attempt: a token an earlier attempt failed on and
            -- this one priced is no longer a failure of the job.
            DELETE FROM job_logs WHERE job_id = :id AND row_kind = 'token'
                AND NOT (token_ref = ANY(CAST(:refs AS text[])))
        ), failed AS (
            INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, token_ref, status, message, event_id)
            SELECT 'token', :id, :jt, :tt, r, 'failed', m, :ev
            FROM unnest(CAST(:refs AS text[]), CAST(:msgs AS text[])) AS x(r, m)
            ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET message = EXCLUDED.message,
                attempts = j.attempts + 1, executed_at = now()
        )
        SELECT 1
        """,
        id=job.job_id,
        jt=job.job_type,
        tt=job.token_type,
        st=status,
        msg=_clip(message),
        req=tokens_requested,
        ok=tokens_succeeded,
        bad=len(failures),
        ev=job.event_id,
        refs=list(by_ref),
        msgs=list(by_ref.values()),
    )


# Job rows an expired delivery may end: never written, an attempt that died ('running') or
# failed ('failed'), or an expired one delivered again. A job an attempt finished keeps its outcome.
_EXPIRY_ENDS = ("running", "failed", "expired")


@dataclass(frozen=True, slots=True)
class JobEnding:
    """The job's status before and after one attempt to end it."""

    previous: str | None  # None: the job had no row yet
    status: str

    @property
    def newly_ended(self) -> bool:
        """True when this attempt gave the job its status (counted once, not per redelivery)."""
        return self.previous != self.status


def expire_job(conn: Conn, job: JobRecord, *, reason: str, tokens_requested: int) -> JobEnding:
    """End the job as 'expired' (its tick was superseded) unless an attempt already finished it.

    A redelivery of a job that succeeded must not turn it into an expired one: it keeps its
    status (returned). An expired or unfinished row counts the attempt. One statement.
    """
    rows = conn.run(
        """
        WITH before AS (
            SELECT status FROM job_logs WHERE row_kind = 'job' AND job_id = :id AND token_ref = ''
        ), ended AS (
            INSERT INTO job_logs AS j (row_kind, job_id, job_type, token_type, status, message, tokens_requested,
                                       tokens_succeeded, tokens_failed, event_id, finished_at)
            VALUES ('job', :id, :jt, :tt, 'expired', :msg, :req, 0, 0, :ev, now())
            ON CONFLICT (job_id, row_kind, token_ref) DO UPDATE SET status = 'expired', message = EXCLUDED.message,
                attempts = j.attempts + 1, finished_at = now(), executed_at = now()
            WHERE j.status = ANY(CAST(:ends AS text[]))
            RETURNING status
        )
        SELECT (SELECT status FROM before), COALESCE((SELECT status FROM ended), (SELECT status FROM before))
        """,
        id=job.job_id,
        jt=job.job_type,
        tt=job.token_type,
        msg=_clip(reason),
        req=tokens_requested,
        ev=job.event_id,
        ends=list(_EXPIRY_ENDS),
    )
    return JobEnding(rows[0][0], str(rows[0][1]))


def run_maintenance(conn: Conn, price_retention_days: int, job_log_retention_days: int) -> None:
    """Prepare price partitions ahead and apply retention (idempotent; see 0002_retention.sql)."""
    conn.run("SELECT maintain_storage(:p, :j)", p=price_retention_days, j=job_log_retention_days)


# --- helpers -----------------------------------------------------------------------------------


def _all_contracts(profile: TokenProfile) -> list[tuple[str, str]]:
    pairs = [(c.chain, c.address) for c in profile.contracts]
    if profile.chain and profile.address and (profile.chain, profile.address) not in pairs:
        pairs.insert(0, (profile.chain, profile.address))
    return pairs


def _pg_text_array(values: Iterable[str]) -> str:
    # A text[] literal per row, because unnest cannot take an array of arrays of varying length.
    escaped = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values]
    return "{" + ",".join(escaped) + "}"


def _clip(text: str | None, limit: int = 2000) -> str | None:
    # Every job_logs text passes here: NUL (which PostgreSQL text refuses, failing the whole
    # job's transaction) and lone surrogates never reach the column, whatever raised them.
    if text is None:
        return None
    text = clean_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Job rows a dead letter may end: the attempt died ('running'), ran out of retries ('failed')
# or was refused ('rejected'). A row that succeeded later (a replay) keeps its outcome.
_DEAD_LETTER_ENDS = ("running", "failed", "rejected")


def dead_letter_job(conn: Conn, job: JobRecord, *, row_ids: Sequence[str], reason: str) -> int:
    """End the job rows among `row_ids` as 'dead_lettered' with `reason`; return the rows changed.

    When none of `row_ids` has a row yet (the function died before logging the job), a row
    is written for `job.job_id`. One statement: idempotent, a redelivered dead letter changes nothing more.
    """
    rows = conn.run(
        """
        WITH ended AS (
            UPDATE job_logs SET status = 'dead_lettered', message = :msg, finished_at = now(), executed_at = now()
            WHERE row_kind = 'job' AND job_id = ANY(CAST(:ids AS text[]))
                AND status = ANY(CAST(:ends AS text[]))
            RETURNING 1
        ), added AS (
            INSERT INTO job_logs (row_kind, job_id, job_type, token_type, status, message, event_id, finished_at)
            SELECT 'job', :id, :jt, :tt, 'dead_lettered', :msg, :ev, now()
            WHERE NOT EXISTS (SELECT 1 FROM job_logs WHERE row_kind = 'job' AND job_id = ANY(CAST(:ids AS text[])))
            ON CONFLICT (job_id, row_kind, token_ref) DO NOTHING
            RETURNING 1
        )
        SELECT (SELECT count(*) FROM ended) + (SELECT count(*) FROM added)
        """,
        ids=list(row_ids),
        ends=list(_DEAD_LETTER_ENDS),
        msg=_clip(reason),
        id=job.job_id,
        jt=job.job_type,
        tt=job.token_type,
        ev=job.event_id,
    )
    return int(rows[0][0])


@dataclass(frozen=True, slots=True)
class StoredDeadLetter:
    """One row of `dead_letters`: a dead-lettered event, kept whole, and why it failed."""

    event_id: str
    event_source: str
    event_type: str
    job_id: str
    job_type: str
    dead_letter_topic: str | None  # None: kept in PostgreSQL only (no request topic known)
    record_key: str | None
    data: bytes
    attributes: dict[str, str]  # every CloudEvent attribute and extension but data
    error_code: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class PendingDeadLetter:
    """A stored dead letter not yet forwarded to its topic."""

    id: int
    topic: str
    key: str | None
    data: bytes
    attributes: dict[str, str]


def store_dead_letter(conn: Conn, letter: StoredDeadLetter) -> bool:
    """Keep a dead letter; False when it was stored already (a redelivery: same event id and source)."""
    # jsonb refuses NUL and lone surrogates like text does; the attributes came off HTTP headers.
    attributes = {clean_text(k): clean_text(v) for k, v in letter.attributes.items()}
    rows = conn.run(
        """
        INSERT INTO dead_letters (event_id, event_source, event_type, job_id, job_type, dead_letter_topic,
                                  record_key, data, attributes, error_code, reason)
        VALUES (:ev, :src, :type, :job, :jt, :topic, :key, :data, CAST(:attrs AS jsonb), :code, :reason)
        ON CONFLICT (event_id, event_source) DO NOTHING
        RETURNING id
        """,
        ev=_clip(letter.event_id, 1000),
        src=_clip(letter.event_source, 1000),
        type=_clip(letter.event_type, 1000),
        job=_clip(letter.job_id, 2000),
        jt=letter.job_type,
        topic=letter.dead_letter_topic,
        key=_clip(letter.record_key, 1000),
        data=letter.data,
        attrs=json.dumps(attributes),
        code=letter.error_code,
        reason=_clip(letter.reason),
    )
    return bool(rows)


def pending_dead_letters(conn: Conn, limit: int) -> list[PendingDeadLetter]:
    """Dead letters still to forward to their topic, oldest first, locked until the transaction ends.

    SKIP LOCKED: two dead letters handled side by side never forward the same pending row twice.
    """
    rows = conn.run(
        """
        SELECT id, dead_letter_topic, record_key, data, CAST(attributes AS text) FROM dead_letters
        WHERE forwarded_at IS NULL AND dead_letter_topic IS NOT NULL
        ORDER BY received_at, id LIMIT :limit
        FOR UPDATE SKIP LOCKED
        """,
        limit=limit,
    )
    return [PendingDeadLetter(int(r[0]), r[1], r[2], bytes(r[3]), json.loads(r[4])) for r in rows]


def mark_dead_letters_forwarded(conn: Conn, ids: Sequence[int]) -> int:
    """Set `forwarded_at` of the dead letters Kafka confirmed; return the rows changed."""
    rows = conn.run(
        "UPDATE dead_letters SET forwarded_at = now() WHERE id = ANY(CAST(:ids AS bigint[])) AND forwarded_at IS NULL"
        " RETURNING 1",
        ids=list(ids),
    )
    return len(rows)
