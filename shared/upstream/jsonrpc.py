"""EVM JSON-RPC over one URL: batch POSTs through the resilient HTTP layer.

One `UpstreamHttp` per URL, so each URL has its own budget, breaker and `Retry-After`
hold (a provider's limit is per URL/key). A batch is one POST, one request of the rate
limit. The answer is matched by `id`, never by position (answers may come in any order,
evm.batch.geth_mixed_error_and_result.json); a missing, repeated or unknown id is
`JsonRpcBatchMismatch`. An error object inside a 200 is typed by its code: -32005 (Infura,
`data.backoff_seconds`) and 429 are `RateLimited` (the HTTP layer then holds every call to
that URL, and retries when the wait is short), -32000/-32603 retryable server errors,
anything else `JsonRpcError`. An HTTP 429 is `RateLimited` with its `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.errors import (
    JsonRpcBatchMismatch,
    JsonRpcError,
    RateLimited,
    RetryableUpstreamError,
    UpstreamError,
    WrongChain,
)
from shared.hexwire import parse_quantity
from shared.wire import to_decimal

from .http import UpstreamHttp

RATE_LIMIT_CODES = frozenset({-32005, 429})
SERVER_ERROR_CODES = frozenset({-32000, -32603})
# The configured URL itself (`base_url`), so a key in its path is never named in a message.
# httpx joins them with a trailing slash (".../v3/<key>/"): nodes and providers seen accept it.
RPC_PATH = ""

Call = tuple[str, Sequence[Any]]


class JsonRpcClient:
    """Batch JSON-RPC calls to one URL; `api` names it in errors and metrics (e.g. "rpc.bsc.1")."""

    def __init__(self, http: UpstreamHttp):
        self.http = http

    def batch(self, calls: Sequence[Call]) -> list[Any]:
        """The `result` of each call, in the order asked; raises the first error (rate limits first)."""
        if not calls:
            return []
        request = [{"jsonrpc": "2.0", "id": i, "method": m, "params": list(p)} for i, (m, p) in enumerate(calls, 1)]
        answers = self.http.post_json(RPC_PATH, request, expect=(list, dict), check=self._check_rate_limits)
        if isinstance(answers, dict):  # one error object for the whole batch (e.g. a proxy refusing it)
            raise self._error_of(answers, "batch")
        by_id: dict[Any, dict[str, Any]] = {}
        for answer in answers:
            if not isinstance(answer, dict) or "id" not in answer:
                raise JsonRpcBatchMismatch(self.http.api, "batch answer item without an id", status=200)
            if answer["id"] in by_id:
                raise JsonRpcBatchMismatch(self.http.api, f"batch answer repeats id {answer['id']!r}", status=200)
            by_id[answer["id"]] = answer
        asked = set(range(1, len(calls) + 1))
        if set(by_id) != asked:
            missing, unknown = sorted(asked - set(by_id)), sorted(map(repr, set(by_id) - asked))
            raise JsonRpcBatchMismatch(
                self.http.api, f"batch answer ids do not match: missing {missing}, unknown {unknown}", status=200
            )
        results = []
        for i, (method, _) in enumerate(calls, 1):
            answer = by_id[i]
            if "error" in answer:
                raise self._error_of(answer, method)
            if "result" not in answer:
                raise JsonRpcBatchMismatch(self.http.api, f"{method}: answer has neither result nor error", status=200)
            results.append(answer["result"])
        return results

    def chain_id(self) -> int:
        """`eth_chainId` as an integer."""
        (result,) = self.batch([("eth_chainId", [])])
        return parse_quantity(result, "chainId")

    def check_chain(self, expected: int, actual: Any) -> int:
        """The chain id answered, or `WrongChain` when it is not `expected` (compared as numbers)."""
        chain = parse_quantity(actual, "chainId")
        if chain != expected:
            raise WrongChain(self.http.api, f"answers for chain id {chain}, configured for {expected}")
        return chain

    def _check_rate_limits(self, body: Any) -> None:
        # Inside the HTTP layer's decode: a limit code holds every call to this URL, like a 429.
        items = body if isinstance(body, list) else [body]
        for item in items:
            error = item.get("error") if isinstance(item, dict) else None
            if isinstance(error, dict) and error.get("code") in RATE_LIMIT_CODES:
                raise self._error_of(item, "batch")

    def _error_of(self, answer: dict[str, Any], method: str) -> UpstreamError:
        error = answer.get("error")
        if not isinstance(error, dict):
            return JsonRpcBatchMismatch(self.http.api, f"{method}: answer without a result or an error", status=200)
        code, message = error.get("code"), str(error.get("message", ""))[:200]
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        reason = f"{method}: JSON-RPC error {code}: {message}"
        if code in RATE_LIMIT_CODES:
            data = error.get("data")
            backoff = to_decimal(data.get("backoff_seconds"), "backoff_seconds") if isinstance(data, dict) else None
            retry_after = float(backoff) if backoff is not None and backoff > 0 else None
            return RateLimited(self.http.api, reason, retry_after=retry_after, status=200, code=code)
        if code in SERVER_ERROR_CODES:
            return RetryableUpstreamError(self.http.api, reason, status=200, code=code)
        return JsonRpcError(self.http.api, reason, status=200, code=code)
