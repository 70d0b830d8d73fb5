"""Property tests of the chain stats parsers: any JSON value is a value or a typed error.

Deterministic (`derandomize`), like tests/unit/test_wire_properties.py."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import BadWireValue
from shared.hexwire import parse_data, parse_quantity
from shared.stats.blocks import block_header

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=80),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
hex_text = st.text(alphabet="0123456789abcdefABCDEF", min_size=1, max_size=64)


@settings(derandomize=True)
@given(json_values)
def test_any_json_is_a_quantity_or_a_typed_error(value: Any) -> None:
    try:
        number = parse_quantity(value, "field")
    except BadWireValue as exc:
        assert exc.field == "field"
    else:
        assert isinstance(value, str) and number == int(value, 16) and 0 <= number < 2**256


@settings(derandomize=True)
@given(hex_text)
def test_every_hex_quantity_round_trips(digits: str) -> None:
    assert parse_quantity("0x" + digits, "f") == int(digits, 16)


@settings(derandomize=True)
@given(json_values)
def test_any_json_is_data_or_a_typed_error(value: Any) -> None:
    try:
        raw = parse_data(value, "mixHash", size=32)
    except BadWireValue:
        return
    assert len(raw) == 32


block_fields = st.sampled_from(
    ["number", "hash", "parentHash", "timestamp", "gasUsed", "gasLimit", "baseFeePerGas", "mixHash", "milliTimestamp"]
)


@settings(derandomize=True)
@given(st.dictionaries(block_fields, json_values | hex_text.map(lambda d: "0x" + d), max_size=9), st.booleans())
def test_any_block_object_is_a_header_or_a_typed_error(result: dict[str, Any], millis: bool) -> None:
    try:
        header = block_header(result, millis_in_mixhash=millis)
    except BadWireValue:
        return
    assert header.gas_used <= header.gas_limit and header.timestamp_ms >= 0
