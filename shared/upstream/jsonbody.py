"""JSON decoding for upstream bodies: every non-integer number becomes a Decimal.

Money travels as Decimal from the wire to the column. `json.loads` would turn
`7.82e-11` or `0.000000000012345` into a float and lose digits; here they stay
exactly as printed. Integers stay `int`.

The decoder cannot stall or lose a whole body to one absurd value: every number's text goes
through the bounded parser (`shared.wire.decoded_number`), and a number outside the
bounds ("1e999999999", 10**6 digits) or a NaN/Infinity literal decodes as a
`WireNumberOutOfBounds` marker, which fails only the item that reads it. msgspec refuses
NaN/Infinity and integers beyond ~1e38; such a body is decoded again by the standard
library with the same bounded hooks (only then: it is the slower decoder).

Text PostgreSQL refuses never leaves here: NUL (``\u0000``) is removed from every string
and key, and a lone surrogate becomes U+FFFD (text columns, jsonb and job_logs would
otherwise fail the whole transaction).

msgspec decodes in C and hands each fractional number's text to `Decimal`: a
DexScreener answer of 30 tokens (~106 KB) takes 0.44 ms instead of the standard
library's 0.69 ms, and the price function decodes a few megabytes every 5-s tick.
"""

from __future__ import annotations

import json
import re
from typing import Any

import msgspec

from shared.wire import WireNumberOutOfBounds, decoded_integer, decoded_number

_BYTE_OFFSET = re.compile(r"\(byte (\d+)\)")
_NUL_ESCAPE = b"\\u0000"

_decoder = msgspec.json.Decoder(float_hook=decoded_number)


def decode_json(content: bytes | str) -> Any:
    """Decode a JSON document, numbers with a fraction or exponent as bounded `Decimal`.

    A number outside the bounds, NaN or Infinity becomes a `WireNumberOutOfBounds` marker
    (module docstring); strings come back free of NUL and lone surrogates. Raises
    `ValueError` for malformed, truncated or empty input, quoting the text where decoding
    stopped.
    """
    if not content:
        raise ValueError("empty body")
    try:
        doc = _decoder.decode(content)
    except msgspec.DecodeError as exc:
        return clean_text(_decode_leniently(content, exc))
    except RecursionError as exc:  # absurdly deep nesting
        raise ValueError("JSON nested too deeply") from exc
    raw = content.encode() if isinstance(content, str) else content
    return clean_text(doc) if _NUL_ESCAPE in raw else doc  # the walk only when a NUL may be there


class JsonShape:
    """Decodes a body into only the fields a reader needs (msgspec `TypedDict`s, unknown keys
    skipped unread): the same numbers, bounds and text rules as `decode_json`, less work.

    The shape types every kept field `Any`, so a value's type never fails the body; a body
    the shape does not fit (an array where an object is expected, a null sub-object), one
    msgspec refuses for its numbers, or one holding a NUL escape is decoded by
    `decode_json` instead, whole: hostile input gets exactly the tolerant reading it
    always had, and only well-formed answers take the short path.
    """

    def __init__(self, shape: Any):
        self.shape = shape
        self._decoder = msgspec.json.Decoder(shape, float_hook=decoded_number)

    def decode(self, content: bytes | str) -> Any:
        """The body as `shape` reads it, or as `decode_json` does (class docstring)."""
        if not content:
            raise ValueError("empty body")
        raw = content.encode() if isinstance(content, str) else content
        if _NUL_ESCAPE in raw:
            return decode_json(content)
        try:
            return self._decoder.decode(content)
        except (msgspec.DecodeError, RecursionError):  # ValidationError is a DecodeError
            return decode_json(content)


def _decode_leniently(content: bytes | str, error: msgspec.DecodeError) -> Any:
    """The standard library's reading of a body msgspec refused for its numbers (NaN,
    Infinity, integers beyond its range), with the same bounded hooks; else msgspec's error."""
    try:
        return json.loads(
            content,
            parse_float=decoded_number,
            parse_int=decoded_integer,
            parse_constant=lambda name: WireNumberOutOfBounds(name, "not a finite number"),
        )
    except (ValueError, RecursionError):
        raise ValueError(f"{error}{_near(content, str(error))}") from error


def clean_text(value: Any) -> Any:
    """`value` with NUL removed from every string and key and lone surrogates replaced."""
    if isinstance(value, str):
        return _clean_string(value)
    if isinstance(value, list):
        return [clean_text(item) for item in value]
    if isinstance(value, dict):
        return {(_clean_string(k) if isinstance(k, str) else k): clean_text(v) for k, v in value.items()}
    return value


def _clean_string(text: str) -> str:
    text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: PostgreSQL refuses it as text
        text = "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)
    return text


def _near(content: bytes | str, message: str) -> str:
    """' near b'NaN, ...'' for msgspec's "(byte N)", so a log line shows what was wrong."""
    match = _BYTE_OFFSET.search(message)
    if not match:
        return ""
    raw = content.encode() if isinstance(content, str) else content
    offset = int(match.group(1))
    return f" near {raw[offset : offset + 24]!r}"
