"""GoPlus token-security payloads -> audit reports.

The raw result entry is kept unmodified in ``AuditReport.flags``; the score and its
explanation come from `shared.crawler.domain.audit_score` (docs/audit-score.md).

Fields derived here:

- ``is_honeypot``: EVM ``is_honeypot`` "1"/"0"; missing -> None (unknown). Solana has no
  honeypot field: True only when the token is ``non_transferable``, else None.
- ``buy_tax`` / ``sell_tax``: fractions ("0.05" = 5 %); ``""`` or absent -> None. Solana
  reports transfer fees in another shape: None (the raw object stays in ``flags``).
- ``is_verified``: EVM ``is_open_source == "1"`` (source code verified). Solana tokens all
  run the shared, audited SPL token program, so "verified" means nothing custom can change
  what holders own: GoPlus lists it as trusted (``trusted_token == 1``), or its metadata
  is immutable and it has no transfer hook (no custom program code in transfers).
- ``report_url``: ``https://gopluslabs.io/token-security/<chain id>/<address>``;
  Solana ``https://gopluslabs.io/token-security/solana/<mint>``.

An entry with none of the scored flags (GoPlus knows nothing about the token) is a
`TokenFailure`, not a perfect score.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.crawler.domain import chains
from shared.crawler.domain.audit_score import (
    EVM_FLAG_PENALTIES,
    SOLANA_AUTHORITY_PENALTIES,
    flag,
    score_evm,
    score_solana,
)
from shared.crawler.domain.sources import Source
from shared.crawler.domain.tokens import canonical_address
from shared.crawler.models import AuditReport, TokenFailure
from shared.errors import BadWireValue
from shared.wire import as_dict, require_utc, text, to_fraction, to_int

REPORT_URL = "https://gopluslabs.io/token-security/{chain_id}/{address}"
OK_CODES = frozenset({1, 2})  # 1 success; 2 partial data (still being synced)

_EVM_EVIDENCE = frozenset({"is_honeypot", "is_open_source", "buy_tax", "sell_tax", *EVM_FLAG_PENALTIES})
_SOLANA_EVIDENCE = frozenset(
    {"non_transferable", "trusted_token", "default_account_state", *SOLANA_AUTHORITY_PENALTIES}
)


def goplus_result_entry(payload: Any, chain: str, address: str, ref: str) -> dict[str, Any] | TokenFailure:
    """The result entry for one address from a GoPlus ``{code, message, result}`` envelope.

    `ref` names the token in a failure (its token key). EVM addresses are looked up
    case-insensitively (GoPlus keys them lower-case); Solana mints exactly.
    """
    body = as_dict(payload)
    try:
        code = to_int(body.get("code"), "code")
    except BadWireValue:
        code = None  # an absurd code is no success code
    if code not in OK_CODES:
        return TokenFailure(ref, f"goplus code {body.get('code')!r}: {text(body.get('message')) or 'no message'}")
    result = as_dict(body.get("result"))
    entry = result.get(address)
    if entry is None and chains.is_evm(chain):
        lowered = address.lower()
        entry = next((v for k, v in result.items() if isinstance(k, str) and k.lower() == lowered), None)
    if not isinstance(entry, dict) or not entry:
        return TokenFailure(ref, "goplus returned no security data for this token")
    return entry


def _has_evidence(entry: dict[str, Any], names: frozenset[str]) -> bool:
    return any(entry.get(name) not in (None, "") for name in names)


def audit_from_goplus_evm(
    token_key: str, chain: str, address: str, result_entry: Any, audited_at: datetime
) -> AuditReport | TokenFailure:
    """An `AuditReport` from an EVM (or Tron) ``token_security`` result entry, or why there is none."""
    audited_at = require_utc(audited_at, "audited_at")
    chain_id = chains.goplus_chain_id(chain)
    # Tron is not EVM but GoPlus serves it on the same endpoint with the same schema.
    if chain_id is None or chain == "solana":
        return TokenFailure(token_key, f"goplus token_security does not cover chain {chain!r}")
    try:
        canonical = canonical_address(chain, address)
    except ValueError as exc:
        return TokenFailure(token_key, str(exc))
    entry = as_dict(result_entry)
    if not _has_evidence(entry, _EVM_EVIDENCE):
        return TokenFailure(token_key, "goplus returned no security flags for this token")
    result = score_evm(entry)
    return AuditReport(
        token_key=token_key,
        provider=Source.GOPLUS.value,
        score=result.score,
        is_verified=flag(entry.get("is_open_source")) is True,
        report_url=REPORT_URL.format(chain_id=chain_id, address=canonical),
        is_honeypot=flag(entry.get("is_honeypot")),
        buy_tax=to_fraction(entry.get("buy_tax"), "buy_tax"),
        sell_tax=to_fraction(entry.get("sell_tax"), "sell_tax"),
        flags=result_entry,
        audited_at=audited_at,
        penalties=result.penalties,
        unknown_flags=result.unknown_flags,
    )


def _solana_verified(entry: dict[str, Any]) -> bool:
    if flag(entry.get("trusted_token")):
        return True
    metadata_mutable = flag(as_dict(entry.get("metadata_mutable")).get("status"))
    return metadata_mutable is False and "transfer_hook" in entry and not entry["transfer_hook"]


def audit_from_goplus_solana(
    token_key: str, address: str, result_entry: Any, audited_at: datetime
) -> AuditReport | TokenFailure:
    """An `AuditReport` from a Solana ``token_security`` result entry, or why there is none."""
    audited_at = require_utc(audited_at, "audited_at")
    try:
        mint = canonical_address("solana", address)
    except ValueError as exc:
        return TokenFailure(token_key, str(exc))
    entry = as_dict(result_entry)
    if not _has_evidence(entry, _SOLANA_EVIDENCE):
        return TokenFailure(token_key, "goplus returned no security flags for this token")
    result = score_solana(entry)
    return AuditReport(
        token_key=token_key,
        provider=Source.GOPLUS.value,
        score=result.score,
        is_verified=_solana_verified(entry),
        report_url=REPORT_URL.format(chain_id="solana", address=mint),
        is_honeypot=True if flag(entry.get("non_transferable")) else None,
        buy_tax=None,
        sell_tax=None,
        flags=result_entry,
        audited_at=audited_at,
        penalties=result.penalties,
        unknown_flags=result.unknown_flags,
    )


def audit_from_goplus(
    token_key: str, chain: str, address: str, result_entry: Any, audited_at: datetime
) -> AuditReport | TokenFailure:
    """Dispatch to the Solana or EVM-schema reading by chain; chains GoPlus lacks are a failure.

    A field GoPlus filled with an absurd number (tax ``1e400``, a holder share of 10**60
    digits) fails this token with the field and the limit, never the whole job.
    """
    try:
        if chain == "solana":
            return audit_from_goplus_solana(token_key, address, result_entry, audited_at)
        return audit_from_goplus_evm(token_key, chain, address, result_entry, audited_at)
    except BadWireValue as exc:
        return TokenFailure(token_key, f"goplus: {exc}")
