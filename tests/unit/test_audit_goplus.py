"""The audit pipeline's GoPlus handling and message reading, without infrastructure: GoPlus answers
are the recorded samples (and its documented error envelopes) served through an httpx transport."""

from __future__ import annotations

from decimal import Decimal

import pytest

from shared.config import Settings
from shared.crawler.jobs import JobMessage
from shared.crawler.pipelines.audit import AuditTarget, fetch_audits, requested_keys
from shared.crawler.pipelines.source_ledger import SourceLedger
from shared.errors import RateLimited
from shared.upstream import GoPlusClient, UpstreamClients
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply, sample_bytes

WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"
EVM_PATH = "/api/v1/token_security/"
SOLANA_PATH = "/api/v1/solana/token_security"


def solana_envelope(mint: str) -> Reply:
    entry = sample_bytes("goplus.solana_token_security.usdc.result_entry.json")
    return Reply(200, b'{"code": 1, "message": "OK", "result": {"%s": %s}}' % (mint.encode(), entry))


def goplus(transport: ReplayTransport, batch_size: int = 1) -> GoPlusClient:
    settings = Settings().with_upstream("goplus", max_retries=0, batch_size=batch_size)
    return UpstreamClients.from_settings(settings, transport=transport, **FakeClock().http_options()).goplus


def target(chain: str, address: str) -> AuditTarget:
    return AuditTarget(f"{chain}:{address}", chain, address)


def test_evm_and_solana_reports_from_the_recorded_answers() -> None:
    transport = ReplayTransport(
        {EVM_PATH + "1": Reply.sample("goplus.token_security.eth_weth.json"), SOLANA_PATH: solana_envelope(USDC_MINT)}
    )
    ledger = SourceLedger()

    reports = fetch_audits(goplus(transport), [target("ethereum", WETH), target("solana", USDC_MINT)], ledger)

    by_key = {r.token_key: r for r in reports}
    weth, usdc = by_key[f"ethereum:{WETH}"], by_key[f"solana:{USDC_MINT}"]
    # The worked examples of docs/audit-score.md.
    assert (weth.score, weth.is_verified, weth.is_honeypot) == (Decimal("100.00"), True, False)
    assert weth.report_url == f"https://gopluslabs.io/token-security/1/{WETH}"
    assert weth.flags["trust_list"] == "1"  # the raw answer, unmodified
    assert usdc.score == Decimal("67.46") and usdc.report_url.endswith(f"/solana/{USDC_MINT}")
    assert not ledger.errors


def test_batches_follow_the_configured_size() -> None:
    addresses = [f"0x{i:040x}" for i in range(1, 4)]
    transport = ReplayTransport({EVM_PATH + "56": Reply.json({"code": 1, "message": "OK", "result": {}})})

    fetch_audits(goplus(transport, batch_size=2), [target("bsc", a) for a in addresses], SourceLedger())

    sent = [r.url.params["contract_addresses"].split(",") for r in transport.requests]
    assert sent == [addresses[:2], addresses[2:]]


def test_an_empty_result_or_an_entry_without_flags_is_a_failure_never_a_perfect_score() -> None:
    unknown, bare = "0x" + "1" * 40, "0x" + "2" * 40
    transport = ReplayTransport(
        {
            EVM_PATH + "56": Reply.json(
                {"code": 1, "message": "OK", "result": {bare: {"token_name": "Bare", "holder_count": "12"}}}
            )
        }
    )
    ledger = SourceLedger()

    reports = fetch_audits(goplus(transport, batch_size=2), [target("bsc", unknown), target("bsc", bare)], ledger)

    assert reports == []
    assert ledger.failure(f"bsc:{unknown}").reason == "goplus returned no security data for this token"
    assert ledger.failure(f"bsc:{bare}").reason == "goplus returned no security flags for this token"
    assert ledger.retryable_error() is None  # a data gap, not an outage: nothing to retry


def test_an_unsupported_chain_code_fails_its_tokens_and_other_chains_still_get_audited() -> None:
    transport = ReplayTransport(
        {
            EVM_PATH + "56": Reply.json({"code": 2018, "message": "The chain is not supported", "result": None}),
            EVM_PATH + "1": Reply.sample("goplus.token_security.eth_weth.json"),
        }
    )
    ledger = SourceLedger()
    bsc = target("bsc", "0x" + "3" * 40)

    reports = fetch_audits(goplus(transport), [bsc, target("ethereum", WETH), target("ton", "EQBq3w7y")], ledger)

    assert [r.token_key for r in reports] == [f"ethereum:{WETH}"]
    assert "code 2018" in ledger.failure(bsc.key).reason
    assert ledger.failure("ton:EQBq3w7y").reason == "goplus does not cover chain ton"
    assert not ledger.is_down("goplus")


def test_a_rate_limit_code_takes_goplus_out_for_the_rest_of_the_job() -> None:
    transport = ReplayTransport(
        {
            EVM_PATH: Reply.json({"code": 4029, "message": "Frequency over limit"}),
            SOLANA_PATH: solana_envelope(USDC_MINT),
        }
    )
    ledger = SourceLedger()

    reports = fetch_audits(goplus(transport), [target("ethereum", WETH), target("solana", USDC_MINT)], ledger)

    assert reports == [] and len(transport.requests) == 1
    error = ledger.retryable_error()
    assert isinstance(error, RateLimited) and error.retry_after == 60
    assert "skipped, unavailable in this job" in ledger.failure(f"solana:{USDC_MINT}").reason


def test_an_audit_job_names_tokens_by_canonical_key_once_each() -> None:
    job = JobMessage.model_validate(
        {
            "job_type": "audit",
            "token_type": "trending",
            "timestamp": "2026-06-25T21:00:00Z",
            "symbols": ["PEPE"],
            "token_keys": [f"ethereum:{WETH}", "native:bitcoin", "ethereum:0xnothex", f"solana:{USDC_MINT}"],
            "contracts": [{"chain": "ethereum", "address": WETH.upper().replace("0X", "0x")}],
        }
    )

    keys, failures = requested_keys(job)

    assert keys == [f"ethereum:{WETH}", "native:bitcoin", f"solana:{USDC_MINT}"]
    assert {f.ref for f in failures} == {"PEPE", "ethereum:0xnothex"}


@pytest.mark.parametrize("mint", [USDC_MINT, USDC_MINT.lower()])
def test_solana_results_are_looked_up_by_the_exact_mint(mint: str) -> None:
    transport = ReplayTransport({SOLANA_PATH: solana_envelope(USDC_MINT)})
    ledger = SourceLedger()

    reports = fetch_audits(goplus(transport), [target("solana", mint)], ledger)

    assert len(reports) == (1 if mint == USDC_MINT else 0)
