"""GoPlus Security: token security audits (EVM chains and Solana).

GoPlus answers HTTP 200 for most failures; the body's `code` decides:
1 ok; 2 partial data (returned as is); 4029 too frequent -> `RateLimited`;
5000 server error -> retried; address/chain/parameter errors -> `PermanentUpstreamError`.
Unauthenticated batches return only the first address (observed), so the batch size is
configuration (GOPLUS_BATCH_SIZE, default 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.config import GoPlusSettings
from shared.errors import BadUpstreamBody, PermanentUpstreamError, RateLimited, RetryableUpstreamError

from .batching import address_list_segment, chunks, path_segment, unique
from .http import UpstreamHttp

API = "goplus"
SOLANA_PATH = "/api/v1/solana/token_security"
OK, PARTIAL = 1, 2
TOO_FREQUENT = 4029
SERVER_ERROR = 5000
# address format, chain not supported, not a contract, contract not found, token not found, parameter
PERMANENT_CODES = frozenset({2004, 2018, 2020, 2021, 4023, 5006})
AUTH_CODES = frozenset({4010, 4011, 4012, 4022})  # key missing/expired/bad signature/invalid token


class GoPlusClient:
    """GoPlus REST client over one `UpstreamHttp`."""

    def __init__(self, http: UpstreamHttp, *, batch_size: int = 1, too_frequent_hold_seconds: float = 60.0):
        if batch_size < 1:
            raise ValueError(f"GoPlus batch size must be at least 1, got {batch_size}")
        self.http = http
        self.batch_size = batch_size
        self.too_frequent_hold_seconds = too_frequent_hold_seconds

    @classmethod
    def from_settings(cls, settings: GoPlusSettings, **http_options: Any) -> GoPlusClient:
        """Build the client and its HTTP layer; the access token (if any) goes in `Authorization`."""
        headers = {"authorization": f"Bearer {settings.api_key}"} if settings.api_key else {}
        http = UpstreamHttp(API, settings, headers=headers, **http_options)
        return cls(http, batch_size=settings.batch_size, too_frequent_hold_seconds=settings.too_frequent_hold_seconds)

    def token_security(self, chain_id: str, addresses: Sequence[str]) -> dict[str, Any]:
        """Audits on an EVM chain (GoPlus chain id: "1", "56", "8453", ... or "tron").

        Returns `{address: result}` merged over batches; keys as GoPlus sends them
        (lower-case hex for EVM). Addresses GoPlus has no data for are simply absent.
        """
        return self._audits(f"/api/v1/token_security/{path_segment(chain_id, 'chain id')}", addresses)

    def solana_token_security(self, mints: Sequence[str]) -> dict[str, Any]:
        """Audits of Solana mints: `{mint: result}` (case-sensitive keys)."""
        return self._audits(SOLANA_PATH, mints)

    def _audits(self, path: str, addresses: Sequence[str]) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for batch in chunks(unique(addresses), self.batch_size):
            address_list_segment(batch)  # validates: no commas inside one address
            params = {"contract_addresses": ",".join(batch)}
            body = self.http.get_json(
                path, params, expect=dict, check=lambda b: check_envelope(b, path, self.too_frequent_hold_seconds)
            )
            result = body.get("result")
            if isinstance(result, dict):
                results.update(result)
        return results


def check_envelope(body: dict[str, Any], path: str, too_frequent_hold_seconds: float = 60.0) -> None:
    """Raise the error GoPlus' in-body `code` stands for; return for 1 (ok) and 2 (partial).

    GoPlus sends no Retry-After with 4029; `too_frequent_hold_seconds` is the wait it stands for.
    """
    code = body.get("code")
    if code in (OK, PARTIAL):
        return
    cause = f"GET {path}: code {code!r:.40}: {body.get('message') or 'no message'}"
    if not isinstance(code, int) or isinstance(code, bool):
        # No {code, message, result} envelope (a legacy or foreign shape): GoPlus answered,
        # asking again gets the same; the tokens asked fail, the breaker is not told.
        raise BadUpstreamBody(API, f"GET {path}: no GoPlus envelope (code {code!r:.40})", status=200)
    if code == TOO_FREQUENT:
        raise RateLimited(API, cause, retry_after=too_frequent_hold_seconds, status=200, code=code)
    if code in PERMANENT_CODES or code in AUTH_CODES:
        raise PermanentUpstreamError(API, cause, status=200, code=code)
    # 5000 and codes we do not know: may well work next time.
    raise RetryableUpstreamError(API, cause, status=200, code=code)
