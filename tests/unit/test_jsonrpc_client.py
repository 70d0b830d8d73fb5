"""The JSON-RPC client and the HTTP layer's POST, against recorded answers (tests/fixtures/upstream/evm.*)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from shared.config import UpstreamSettings
from shared.errors import JsonRpcBatchMismatch, JsonRpcError, RateLimited, WrongChain
from shared.upstream.http import UpstreamHttp
from shared.upstream.jsonrpc import JsonRpcClient
from tests.helpers.upstream_doubles import FakeClock, ReplayTransport, Reply, sample_bytes

URL = "https://rpc.test/v3/secret-key"


def sample(name: str) -> Any:
    return json.loads(sample_bytes(name))


def client(transport: ReplayTransport, clock: FakeClock, **overrides: Any) -> JsonRpcClient:
    values: dict[str, Any] = {
        "base_url": URL,
        "max_retries": 2,
        "backoff_initial_seconds": 0.1,
        "rate_limit_per_minute": 1000,
        "max_wait_seconds": 5.0,
    }
    settings = UpstreamSettings(**{**values, **overrides})
    return JsonRpcClient(UpstreamHttp("rpc.test", settings, transport=transport, **clock.http_options()))


def answering(results: dict[str, Any], reverse: bool = False, drop: int | None = None) -> Any:
    """A node answering each call of a batch with the recorded result for its method."""

    def handle(request: httpx.Request) -> Reply:
        calls = json.loads(request.content)
        answers = [{"jsonrpc": "2.0", "id": c["id"], "result": results[c["method"]]} for c in calls]
        answers = [a for a in answers if a["id"] != drop]
        return Reply.json(list(reversed(answers)) if reverse else answers)

    return handle


RESULTS = {
    "eth_chainId": "0x38",
    "eth_blockNumber": sample("evm.eth_blockNumber.hive.json")["result"],
    "eth_getBlockByNumber": sample("evm.eth_getBlockByNumber.bsc_mainnet_fermi_infura.folded.json")["result"],
}
CALLS = [("eth_chainId", []), ("eth_blockNumber", []), ("eth_getBlockByNumber", ["0x483f85d", False])]


def test_a_batch_is_one_json_post_answered_by_id_in_any_order() -> None:
    transport = ReplayTransport({"/": answering(RESULTS, reverse=True)})
    results = client(transport, FakeClock()).batch(CALLS)
    assert results[0] == "0x38" and results[1] == "0x36" and results[2]["number"] == "0x483f85d"
    (request,) = transport.requests
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert [c["method"] for c in json.loads(request.content)] == [m for m, _ in CALLS]


def test_a_batch_answer_with_a_missing_id_is_a_typed_error() -> None:
    transport = ReplayTransport({"/": answering(RESULTS, drop=2)})
    with pytest.raises(JsonRpcBatchMismatch, match=r"missing \[2\]"):
        client(transport, FakeClock()).batch(CALLS)


def test_the_recorded_geth_batch_ids_are_not_the_ids_asked() -> None:
    # evm.batch.geth_mixed_error_and_result.json answers ids 2 and 3; we asked 1 and 2.
    transport = ReplayTransport({"/": Reply.sample("evm.batch.geth_mixed_error_and_result.json")})
    with pytest.raises(JsonRpcBatchMismatch, match=r"missing \[1\], unknown \['3'\]|missing \[1\], unknown \[3\]"):
        client(transport, FakeClock()).batch(CALLS[:2])


def test_a_json_rpc_error_inside_a_200_is_typed_by_its_code() -> None:
    def method_not_found(request: httpx.Request) -> Reply:
        error = sample("evm.error.method_not_found.geth.json")
        return Reply.json([{**error, "id": c["id"]} for c in json.loads(request.content)])

    transport = ReplayTransport({"/": method_not_found})
    with pytest.raises(JsonRpcError) as caught:
        client(transport, FakeClock()).batch(CALLS[:1])
    assert caught.value.code == -32601 and caught.value.status == 200
    assert len(transport.requests) == 1  # never retried: the same question gets the same answer
    assert "secret-key" not in str(caught.value)


def test_infura_minus_32005_holds_every_call_for_its_backoff() -> None:
    limited = sample("evm.error.infura_429_project_rate_exceeded.json")  # backoff_seconds 30
    transport = ReplayTransport({"/": Reply.json(limited)})
    rpc = client(transport, FakeClock())
    with pytest.raises(RateLimited) as caught:
        rpc.batch(CALLS[:1])
    assert caught.value.retry_after == 30.0 and caught.value.code == -32005
    with pytest.raises(RateLimited, match="no request sent"):  # held: 30 s is beyond the 5-s wait
        rpc.batch(CALLS[:1])
    assert len(transport.requests) == 1


def test_http_429_is_retried_after_its_retry_after() -> None:
    clock = FakeClock()
    transport = ReplayTransport({"/": [Reply(429, b"", {"retry-after": "2"}), answering(RESULTS)]})
    assert client(transport, clock).batch(CALLS[:1]) == ["0x38"]
    assert len(transport.requests) == 2 and max(clock.sleeps) >= 2.0


def test_an_rpc_on_another_chain_is_wrong_chain() -> None:
    transport = ReplayTransport({"/": answering({**RESULTS, "eth_chainId": "0x1"})})
    rpc = client(transport, FakeClock())
    (chain,) = rpc.batch(CALLS[:1])
    with pytest.raises(WrongChain, match="chain id 1, configured for 56"):
        rpc.check_chain(56, chain)
    assert rpc.check_chain(1, chain) == 1 and rpc.chain_id() == 1
