"""The audit function through its edge, on real PostgreSQL and Kafka, with GoPlus served by the
simulated market over real HTTP: triggered by the trending job's real completion event,
idempotent on redelivery, and strict about which tokens it audits."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from local.market.server import SimulatedMarket
from shared.runtime.app import FunctionApp
from shared.runtime.resources import Resources
from shared.runtime.verdict import HttpResponse
from tests.helpers.cloudevents import job_request, request_for_message
from tests.helpers.db import Database
from tests.helpers.functions import function_app
from tests.helpers.kafka import read_all
from tests.helpers.market import market_resources

PICO = "bsc:0xbc6557b8bba5b2eccc152e80899825fba50d9dd1"
TRAPX = "base:0x8b3f39a26922bcfe0ceed2863767c714aa7ab33f"  # honeypot
ZAPY = "solana:H8MvtfAEmuUte7g5d9GQwCXLBk2t3VfRrXBz1xTMpump"  # freezable SPL token
AUDIT_SOURCE = "audit-request-source"


@dataclass
class AuditStack:
    market: SimulatedMarket
    resources: Resources
    price: FunctionApp
    audit: FunctionApp
    db: Database
    bootstrap: str

    def crawl(self, **job: Any) -> list[Any]:
        """Run a trending job and return the completion events it published so far."""
        message = {
            "job_type": "price",
            "token_type": "trending",
            "symbols": [],
            "job_id": "trending:audit-test",
            "timestamp": now(),
            **job,
        }
        response = job_request(message).to(self.price)
        assert response.status == 200, response.body
        return read_all(self.bootstrap, self.resources.settings.audit_topic)

    def audit_job(self, job: dict[str, Any], offset: int = 0) -> HttpResponse:
        request = job_request(job, topic=self.resources.settings.audit_topic, offset=offset, source_name=AUDIT_SOURCE)
        return request.to(self.audit)

    def audits(self) -> dict[str, dict[str, Any]]:
        return {r["token_key"]: r for r in self.db.rows("SELECT * FROM token_audits")}


def now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def audit_message(*keys: str, job_id: str = "audit:manual", **fields: Any) -> dict[str, Any]:
    return {
        "job_type": "audit",
        "token_type": "trending",
        "symbols": [],
        "token_keys": list(keys),
        "job_id": job_id,
        "timestamp": now(),
        **fields,
    }


def job_log(db: Database, job_id: str, kind: str = "job") -> list[dict[str, Any]]:
    """The job_logs rows of one job and kind, oldest first."""
    return db.rows("SELECT * FROM job_logs WHERE job_id = :job AND row_kind = :kind ORDER BY id", job=job_id, kind=kind)


def body(response: HttpResponse) -> dict[str, Any]:
    return json.loads(response.body)


@pytest.fixture
def stack(simulated_market: SimulatedMarket, clean_db: str, kafka_bootstrap: str, unique_topic) -> Iterator[AuditStack]:
    resources = market_resources(
        simulated_market,
        database_url=clean_db,
        kafka_bootstrap_servers=kafka_bootstrap,
        audit_topic=unique_topic("audit", partitions=1),
        price_updated_topic=unique_topic("updated", partitions=1),
        upstream={"goplus": {"max_retries": 0}},
    )
    built = AuditStack(
        simulated_market,
        resources,
        function_app("price", resources),
        function_app("audit", resources),
        Database(clean_db),
        kafka_bootstrap,
    )
    try:
        yield built
    finally:
        built.db.close()
        resources.close()


def test_the_completion_event_audits_every_committed_token_once_even_when_redelivered(stack: AuditStack) -> None:
    [completion] = stack.crawl()
    committed = set(json.loads(completion.value())["token_keys"])
    request = request_for_message(completion, source_name=AUDIT_SOURCE)  # what KafkaSource POSTs

    first = request.to(stack.audit)

    assert first.status == 200, first.body
    assert body(first)["status"] == "succeeded" and body(first)["succeeded"] == len(committed)
    audits = stack.audits()
    assert set(audits) == committed and {a["audit_provider"] for a in audits.values()} == {"goplus"}
    # EVM and Solana tokens, with the documented score, verdicts, raw flags and report URL.
    assert audits[TRAPX]["audit_score"] == Decimal("0.00") and audits[TRAPX]["is_honeypot"] is True
    assert audits[TRAPX]["flags"]["is_honeypot"] == "1"
    assert audits[TRAPX]["report_url"] == "https://gopluslabs.io/token-security/8453/" + TRAPX.split(":")[1]
    assert audits[PICO]["audit_score"] > Decimal(80) and audits[PICO]["is_verified"] is True
    zapy = audits[ZAPY]
    assert zapy["report_url"] == "https://gopluslabs.io/token-security/solana/" + ZAPY.split(":")[1]
    assert zapy["flags"]["freezable"]["status"] == "1" and "freezable" in zapy["flags"]["_score"]["penalties"]
    assert zapy["audit_score"] < Decimal(100)

    second = request.to(stack.audit)  # KafkaSource redelivers the same record

    assert second.status == 200, second.body
    assert stack.db.value("SELECT count(*) FROM token_audits") == len(committed)
    [job] = job_log(stack.db, "audit:trending:audit-test", "job")
    assert (job["status"], job["attempts"], job["tokens_succeeded"]) == ("succeeded", 2, len(committed))


def test_an_audit_for_unknown_tokens_is_rejected_with_its_reason(stack: AuditStack) -> None:
    unknown = "bsc:0x000000000000000000000000000000000000dead"

    response = stack.audit_job(audit_message(unknown, job_id="audit:unknown"))

    assert response.status == 400
    assert body(response)["kind"] == "UnknownToken" and unknown in body(response)["error"]
    assert body(response)["retryable"] is False
    [job] = job_log(stack.db, "audit:unknown", "job")
    assert job["status"] == "failed" and unknown in job["message"]
    assert stack.db.value("SELECT count(*) FROM token_audits") == 0
    assert stack.market.stats.count("goplus") == 0


def test_only_committed_contract_tokens_are_audited_each_other_one_has_its_reason(stack: AuditStack) -> None:
    metadata = function_app("metadata", stack.resources)
    top100 = {"job_type": "metadata", "token_type": "top100", "symbols": [], "timestamp": now()}
    assert job_request(top100, topic="price-crawler.metadata.request").to(metadata).status == 200
    stack.crawl(contracts=[{"chain": "bsc", "address": PICO.split(":")[1]}])
    pepe = "ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"  # top-100 profile, never priced
    unknown = "base:0x000000000000000000000000000000000000beef"

    response = stack.audit_job(
        audit_message(PICO, pepe, "native:bitcoin", unknown, job_id="audit:mixed", symbols=["PEPE"])
    )

    assert response.status == 200, response.body
    result = body(response)
    reasons = {f["token"]: f["reason"] for f in result["failures"]}
    assert reasons == {
        "PEPE": "audit jobs name tokens by token key or contract, not by symbol",
        pepe: "no committed price: audits run only after price and metadata committed",
        "native:bitcoin": "native coin: no contract to audit",
        unknown: "unknown token: no profile committed for it",
    }
    assert (result["status"], result["requested"], result["succeeded"]) == ("partial", 5, 1)
    assert set(stack.audits()) == {PICO}
    failed_rows = {r["token_ref"] for r in job_log(stack.db, "audit:mixed", "token")}
    assert failed_rows == set(reasons)


def test_an_explicit_audit_job_may_name_a_contract(stack: AuditStack) -> None:
    stack.crawl(contracts=[{"chain": "bsc", "address": PICO.split(":")[1]}])

    response = stack.audit_job(
        {
            "job_type": "audit",
            "token_type": "trending",
            "timestamp": now(),
            "contracts": [{"chain": "bsc", "address": "0xBC6557b8Bba5B2EccC152e80899825FBA50D9Dd1"}],
        }
    )

    assert response.status == 200, response.body
    assert set(stack.audits()) == {PICO}


def test_goplus_rate_limit_for_every_token_answers_429_with_its_pause(stack: AuditStack) -> None:
    stack.crawl(contracts=[{"chain": "bsc", "address": PICO.split(":")[1]}], token_keys=[ZAPY])
    stack.market.faults.add("429", api="goplus", count="until_cleared")  # HTTP 200, code 4029

    response = stack.audit_job(audit_message(PICO, ZAPY, job_id="audit:limited"))

    assert response.status == 429, response.body
    assert response.headers["Retry-After"] == "60"  # GoPlus counts per minute
    assert stack.db.value("SELECT count(*) FROM token_audits") == 0
    # GoPlus was asked once, then left alone for the rest of the job.
    assert stack.market.stats.count("goplus") == 1


def test_goplus_down_fails_cleanly_then_the_redelivery_audits(stack: AuditStack) -> None:
    stack.crawl(contracts=[{"chain": "bsc", "address": PICO.split(":")[1]}], token_keys=[ZAPY])
    stack.market.faults.add("500", api="goplus", count="until_cleared")

    failed = stack.audit_job(audit_message(PICO, ZAPY, job_id="audit:outage"), offset=3)

    assert failed.status == 503, failed.body
    assert stack.db.value("SELECT count(*) FROM token_audits") == 0
    [job] = job_log(stack.db, "audit:outage", "job")
    assert job["status"] == "failed" and "goplus" in job["message"]

    stack.market.faults.clear()
    retried = stack.audit_job(audit_message(PICO, ZAPY, job_id="audit:outage"), offset=3)

    assert retried.status == 200, retried.body
    assert set(stack.audits()) == {PICO, ZAPY}
    [job] = job_log(stack.db, "audit:outage", "job")
    assert (job["status"], job["attempts"]) == ("succeeded", 2)
