"""Generated poison messages: bodies no job can be made of, each with the kind of damage it has.

Deterministic for a seed. Every message is bad by construction (at least one damage that
can never succeed); the kinds cover what the issue lists: invalid JSON, wrong schema,
oversized bodies, unknown job types, field values with SQL metacharacters, huge strings,
plus broken encodings, control characters and messages valid in form but aimed at the
wrong function or at tokens nobody knows.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

SQL = [
    "'; DROP TABLE tokens; --",
    '" OR "1"="1',
    "1; DELETE FROM job_logs WHERE true; --",
    "') ON CONFLICT DO NOTHING; TRUNCATE token_prices; --",
    "$$; SELECT pg_sleep(10); $$",
    "\\'; COPY job_logs TO '/tmp/x'; --",
    "%' UNION SELECT * FROM pg_shadow --",
    "E'\\\\x00'",
]
# Characters no ticker, token type or timestamp has (Python's fromisoformat ignores a trailing NUL,
# so NUL is left to `_nul`, which puts it where it would reach PostgreSQL).
ODD = ["\u202e", "\ud83d\ude00", "\x1b[31m", "\r\n", "\\u0000", "\ufeff", " ", "\t"]
TOPICS = ("price-crawler.price.request", "price-crawler.metadata.request", "price-crawler.audit.request")


@dataclass(frozen=True)
class Poison:
    """One bad message: the topic it goes to, its bytes (None: a record with no value) and its damage."""

    topic: str
    value: bytes | None
    damage: str


def _valid(rng: random.Random, topic: str) -> dict[str, Any]:
    """A well-formed job for `topic`, to be damaged."""
    base = {"timestamp": "2025-06-25T21:00:00Z", "job_id": f"fuzz-{rng.randrange(10**9)}"}
    if topic.endswith("audit.request"):
        return {**base, "job_type": "audit", "token_type": "trending", "token_keys": ["ethereum:0xabc"]}
    if topic.endswith("metadata.request"):
        return {**base, "job_type": "metadata", "token_type": "top100", "symbols": []}
    return {**base, "job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH"]}


def _dump(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def _huge(rng: random.Random, size: int) -> str:
    return "".join(rng.choice("AB'\";-%_\\") for _ in range(64)) * (size // 64)


# Each maker returns (body, damage) for a topic; all of them can never succeed.
def _invalid_json(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    text = json.dumps(_valid(rng, topic))
    choice = rng.randrange(8)
    if choice == 0:
        return text[: rng.randrange(1, len(text) - 1)].encode(), "invalid-json:truncated"
    if choice == 1:
        return text.replace(",", ",,", 1).encode(), "invalid-json:double-comma"
    if choice == 2:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))), "invalid-json:random-bytes"
    if choice == 3:
        return text.encode().replace(b'"', b'"\xc3', 1), "invalid-json:bad-utf8"
    if choice == 4:
        return text.encode("latin-1", "replace") + b"\xe9\xff", "invalid-json:latin1-tail"
    if choice == 5:
        return ("[" * 50_000 + "]" * 50_000).encode(), "invalid-json:nested-50000"
    if choice == 6:
        return (
            '{"job_type": "price", "symbols": [' + "{" * 20_000 + "}" * 20_000 + "]}"
        ).encode(), "invalid-json:nested-objects"
    return text.replace('"', "'").encode(), "invalid-json:single-quotes"


def _not_an_object(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    return rng.choice(
        [b"[]", b'"price"', b"42", b"null", b"true", b"1e999", b'[{"job_type": "price"}]', b"NaN", b"-Infinity"]
    ), "not-an-object"


def _empty(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    return rng.choice([None, b"", b"   ", b"\n"]), "empty"


def _wrong_schema(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    job = _valid(rng, topic)
    field, value = rng.choice(
        [
            ("job_type", None),
            ("job_type", 7),
            ("job_type", ["price"]),
            ("token_type", "top1000"),
            ("token_type", None),
            ("timestamp", 1750885200),
            ("timestamp", "yesterday"),
            ("timestamp", None),
            ("symbols", "BTC,ETH"),
            ("symbols", [1, 2]),
            ("symbols", [None]),
            ("symbols", {"BTC": 1}),
            ("batch", -1),
            ("batch", "1"),
            ("batches", 0),
            ("contracts", [{"chain": "ethereum"}]),
            ("contracts", "0xabc"),
            ("token_keys", [""]),
            ("token_keys", ["no-colon"]),
            ("expires_at", 5),
            ("job_id", 12345),
            ("symbols", [True]),
        ]
    )
    if value is None and rng.random() < 0.5:
        job.pop(field, None)
        return _dump(job), f"schema:missing-{field}"
    job[field] = value
    return _dump(job), f"schema:{field}"


def _unknown_job_type(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    job = _valid(rng, topic)
    job["job_type"] = rng.choice(["prices", "PRICE", "delete", "audit_all", "", "price ", "metadata\u0000"])
    if rng.random() < 0.5:  # a real job type, at the wrong function
        job["job_type"] = {"price": "audit", "metadata": "audit", "audit": "price"}[topic.split(".")[1]]
        if job["job_type"] == "price":
            job["symbols"] = ["BTC"]
        return _dump(job), "unknown-job-type:wrong-function"
    return _dump(job), "unknown-job-type"


def _sql(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    job = _valid(rng, topic)
    injection = rng.choice(SQL)
    where = rng.choice(["symbols", "job_type", "token_type", "contracts", "token_keys", "timestamp", "chain"])
    if where == "symbols":
        job["symbols"] = ["BTC", injection]
    elif where == "contracts":
        job["contracts"] = [{"chain": "ethereum", "address": injection}]
    elif where == "chain":
        job["contracts"] = [{"chain": injection, "address": "0x6982508145454ce325ddbe47a25d4ec3d2311933"}]
    elif where == "token_keys" and topic.endswith("audit.request"):
        job["token_keys"] = [f"ethereum:{injection}"]  # a key no token has: UnknownToken
    elif where == "token_keys":
        job["symbols"] = [injection]
    else:
        job[where] = injection
    return _dump(job), f"sql:{where}"


def _huge_strings(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    job = _valid(rng, topic)
    choice = rng.randrange(5)
    if choice == 0:
        job["symbols"] = [_huge(rng, 200_000)]
        return _dump(job), "huge:symbol-200kB"
    if choice == 1:
        job["job_id"] = _huge(rng, 50_000)
        return _dump(job), "huge:job_id-50kB"
    if choice == 2:
        job["padding"] = _huge(rng, 300_000)  # unknown fields are tolerated, but not past the size limit
        return _dump(job), "oversized:300kB"
    if choice == 3:
        job["symbols"] = [f"S{i}" for i in range(6000)]
        return _dump(job), "huge:6000-symbols"
    job["contracts"] = [{"chain": "ethereum", "address": _huge(rng, 5_000)}]
    return _dump(job), "huge:address-5kB"


def _odd_characters(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    job = _valid(rng, topic)
    odd = rng.choice(ODD)
    where = rng.choice(["symbols", "job_id", "token_type", "timestamp"])
    if where == "symbols":
        job["symbols"] = [f"BT{odd}C"]
    elif where == "job_id":
        job["job_id"] = f"fuzz{odd}id"
        job["token_type"] = "everything"  # and one damage that can never succeed
    else:
        job[where] = f"{job[where]}{odd}"
    return _dump(job), f"odd-characters:{where}"


def _nul(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    """A NUL character where the value would be stored: PostgreSQL text cannot hold one."""
    job = _valid(rng, topic)
    if topic.endswith("audit.request") and rng.random() < 0.5:
        job["token_keys"] = ["native:bit\u0000coin"]
        return _dump(job), "nul:token_key"
    job["job_id"] = f"fuzz-{rng.randrange(10**6)}\u0000-nul"
    return _dump(job), "nul:job_id"


def _nobody_knows(rng: random.Random, topic: str) -> tuple[bytes | None, str]:
    if topic.endswith("audit.request"):
        job = _valid(rng, topic)
        job["token_keys"] = [f"ethereum:0x{rng.randrange(16**40):040x}"]
        return _dump(job), "unknown-token:audit"
    if topic.endswith("price.request") and rng.random() < 0.5:
        job = _valid(rng, topic)
        job["token_type"] = "trending"  # trending tokens are named by contract, never by symbol
        return _dump(job), "trending-by-symbol"
    job = _valid(rng, topic)
    job["symbols"] = ["X" * rng.randrange(33, 100)]  # longer than any ticker
    return _dump(job), "schema:long-symbol"


MAKERS: list[Callable[[random.Random, str], tuple[bytes | None, str]]] = [
    _invalid_json,
    _not_an_object,
    _empty,
    _wrong_schema,
    _unknown_job_type,
    _sql,
    _huge_strings,
    _odd_characters,
    _nul,
    _nobody_knows,
]


def poison_messages(count: int, seed: int = 20250625) -> Iterator[Poison]:
    """`count` bad messages spread over the three request topics (3 of 5 on the price topic)."""
    rng = random.Random(seed)
    for index in range(count):
        topic = TOPICS[0] if index % 5 < 3 else TOPICS[1 + index % 2]
        value, damage = rng.choice(MAKERS)(rng, topic)
        yield Poison(topic, value, damage)
