"""Job messages: the contract on the request topics (README, Contracts).

The original format must keep working verbatim:
    {"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"],
     "timestamp": "2025-06-25T21:00:00Z"}
Optional fields may be added; unknown fields are tolerated; wrong types are rejected
with a clear reason (`BadMessage`).
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.errors import BadMessage

JobType = Literal["price", "metadata", "price_metadata", "audit"]
TokenType = Literal["top100", "trending"]

# Symbols are tickers, not free text: letters, digits and a few separators seen on
# real tickers (e.g. "1000SATS", "BTC.B", "USD+"). Anything else is rejected, which
# keeps quotes and SQL metacharacters out of every downstream path.
_SYMBOL_MAX_LEN = 32
_ADDRESS_MAX_LEN = 128
# The same rules as JSON Schema patterns: a ticker after trimming; a printable key with a ':'.
_SYMBOL_PATTERN = rf"^\s*[A-Za-z0-9._+-]{{1,{_SYMBOL_MAX_LEN}}}\s*$"
_TOKEN_KEY_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*:[^\x00-\x1f\x7f-\x9f]*$"
_INT_MAX_DIGITS = 40


def is_ticker(symbol: str) -> bool:
    """Whether `symbol` (upper-cased) is a symbol a job message may carry."""
    return 0 < len(symbol) <= _SYMBOL_MAX_LEN and all(c.isascii() and (c.isalnum() or c in "._+-") for c in symbol)


class ContractRef(BaseModel):
    """A token named by chain and address (trending and audit jobs)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    chain: str = Field(min_length=1, max_length=32, pattern=r"^[a-z0-9_-]+$")
    address: str = Field(min_length=1, max_length=_ADDRESS_MAX_LEN, pattern=r"^[A-Za-z0-9_.:-]+$")


class JobMessage(BaseModel):
    """A job on price-crawler.{price,metadata,audit}.request."""

    model_config = ConfigDict(extra="ignore", frozen=True, strict=True)

    job_type: JobType
    token_type: TokenType
    # json_schema_extra: the published schema (schemas/, shared.crawler.contracts) states the rules the
    # validators below apply; validation itself stays theirs.
    symbols: list[str] = Field(
        default_factory=list, json_schema_extra={"items": {"type": "string", "pattern": _SYMBOL_PATTERN}}
    )
    timestamp: datetime
    # No control characters: PostgreSQL text cannot hold NUL, and ids end up in logs.
    job_id: str | None = Field(default=None, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
    batch: int | None = Field(default=None, ge=0)
    batches: int | None = Field(default=None, ge=1)
    contracts: list[ContractRef] = Field(default_factory=list)
    token_keys: list[str] = Field(
        default_factory=list,
        json_schema_extra={
            "items": {
                "type": "string",
                "minLength": 1,
                "maxLength": _ADDRESS_MAX_LEN + 40,
                "pattern": _TOKEN_KEY_PATTERN,
            }
        },
    )
    traceparent: str | None = Field(default=None, max_length=128, pattern=r"^[^\x00-\x1f\x7f]*$")
    # Set by the scheduler: a tick's job is worthless after the next ticks superseded it.
    expires_at: datetime | None = None

    @field_validator("timestamp", "expires_at", mode="before")
    @classmethod
    def _parse_timestamp(cls, value: object) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise ValueError("must be an ISO-8601 string such as 2025-06-25T21:00:00Z")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("must be an ISO-8601 string such as 2025-06-25T21:00:00Z") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)

    @field_validator("symbols")
    @classmethod
    def _check_symbols(cls, values: list[str]) -> list[str]:
        cleaned: dict[str, None] = {}  # first occurrence wins, in order; a set lookup, not a list scan
        for raw in values:
            symbol = raw.strip().upper()
            if not is_ticker(symbol):
                raise ValueError(f"invalid symbol {raw[:40]!r}: expected a ticker like 'BTC'")
            cleaned[symbol] = None
        return list(cleaned)

    @field_validator("token_keys")
    @classmethod
    def _check_keys(cls, values: list[str]) -> list[str]:
        for key in values:
            if not key or len(key) > _ADDRESS_MAX_LEN + 40 or ":" not in key or not key.isprintable():
                raise ValueError(f"invalid token key {key[:60]!r}")
        return values


def parse_job_message(body: bytes | str | None, *, max_bytes: int = 256 * 1024, max_symbols: int = 5000) -> JobMessage:
    """Parse and validate a job message body; raise `BadMessage` with a readable reason."""
    if body is None or len(body) == 0:
        raise BadMessage("empty message body: expected a JSON job object")
    if len(body) > max_bytes:
        raise BadMessage(f"message body is {len(body)} bytes, over the {max_bytes}-byte limit")
    try:
        # Bounded integers: int() of a 10**5-digit literal is quadratic time (and no batch has 40 digits).
        data = json.loads(body, parse_int=_bounded_int, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deeply
        raise BadMessage(f"message body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadMessage(f"message body must be a JSON object, got {type(data).__name__}")
    try:
        job = JobMessage.model_validate(data)
    except ValidationError as exc:
        raise BadMessage("invalid job message: " + describe_validation_error(exc)) from None
    if len(job.symbols) > max_symbols:
        raise BadMessage(f"{len(job.symbols)} symbols, over the limit of {max_symbols} per message")
    return job


def _bounded_int(raw: str) -> int:
    if len(raw) > _INT_MAX_DIGITS:
        raise ValueError(f"integer of {len(raw)} digits, over the limit of {_INT_MAX_DIGITS}")
    return int(raw)


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def describe_validation_error(exc: ValidationError) -> str:
    """One line per problem: `field: message`, without echoing huge inputs back."""
    parts = []
    for err in exc.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)
