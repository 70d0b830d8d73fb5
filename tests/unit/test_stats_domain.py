"""Chain stats domain (shared/stats): each statistic against values computed by hand from the
recorded blocks in tests/fixtures/upstream/ (provenance in its INDEX.md)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from shared.errors import BadWireValue
from shared.hexwire import BadQuantity, parse_data, parse_quantity
from shared.stats.agreement import UrlObservation, UrlStatus, agree
from shared.stats.blocks import BadBlock, BlockHeader, bep520_millis, block_header
from shared.stats.change import ChangeTolerances, PublishedReading, changes
from shared.stats.health import Health, HealthThresholds, judge
from shared.stats.performance import BlockWindowAnomaly, measure
from tests.helpers.upstream_doubles import sample_bytes


def recorded_block(name: str) -> dict[str, Any]:
    document = json.loads(sample_bytes(name))
    return document.get("result", document) if "jsonrpc" in document else document


BSC_FERMI = "evm.eth_getBlockByNumber.bsc_mainnet_fermi_infura.folded.json"
BSC_CHAPEL = "evm.eth_getBlockByNumber.bsc_chapel_maxwell_full.result.json"
BASE = "evm.eth_getBlockByNumber.base_mainnet_latest.json"
ETHEREUM = "evm.eth_getBlockByNumber.ethereum_prague_hive.json"


# --- quantities -------------------------------------------------------------------------------


def test_quantities_of_the_recorded_answers() -> None:
    assert parse_quantity(json.loads(sample_bytes("evm.eth_blockNumber.hive.json"))["result"], "head") == 54
    chain_id = json.loads(sample_bytes("evm.eth_chainId.hive.json"))["result"]
    assert parse_quantity(chain_id, "chainId") == 3503995874084926
    assert parse_quantity("0x0", "x") == 0
    assert parse_quantity("0x00ff", "x") == 255  # padded by some proxies: tolerated


@pytest.mark.parametrize(
    "value", ["", "0x", "12", "0xg1", "0x-1", " 0x1", "0x1 ", 12, 1.5, None, True, "0x" + "f" * 65, ["0x1"]]
)
def test_a_quantity_that_is_not_hex_is_a_typed_error(value: Any) -> None:
    with pytest.raises(BadQuantity) as caught:
        parse_quantity(value, "gasUsed")
    assert caught.value.field == "gasUsed"


def test_data_must_be_whole_bytes_of_the_expected_size() -> None:
    assert parse_data("0x01c2", "d") == b"\x01\xc2"
    for bad in ("0x1c2", "0xzz", "0x" + "00" * 31):
        with pytest.raises(BadQuantity):
            parse_data(bad, "mixHash", size=32)


# --- blocks ---------------------------------------------------------------------------------


def test_bsc_fermi_block_milliseconds_come_from_mixhash_and_agree_with_millitimestamp() -> None:
    result = recorded_block(BSC_FERMI)
    assert bep520_millis(result["mixHash"]) == 450  # 0x...01c2
    block = block_header(result, millis_in_mixhash=True)
    # timestamp 0x696b3d12 = 1768635666 s (2026-01-17 07:41:06 UTC) + 450 ms = milliTimestamp 0x19bcae69012
    assert block.timestamp_ms == 1_768_635_666_450
    assert block.number == 75_757_661
    assert (block.gas_used, block.gas_limit, block.base_fee_wei) == (11_334_430, 55_000_000, 0)


def test_bsc_block_without_millitimestamp_is_read_from_mixhash_alone() -> None:
    result = {k: v for k, v in recorded_block(BSC_CHAPEL).items() if k != "milliTimestamp"}
    # timestamp 0x6855884c = 1750435916 s, mixHash ...00fa = 250 ms (= the recorded milliTimestamp 0x1978e1c69da)
    assert block_header(result, millis_in_mixhash=True).timestamp_ms == 1_750_435_916_250 == 0x1978E1C69DA


def test_an_all_zero_mixhash_is_zero_milliseconds() -> None:
    result = {**recorded_block(BSC_CHAPEL), "mixHash": "0x" + "00" * 32}
    result.pop("milliTimestamp")
    assert block_header(result, millis_in_mixhash=True).timestamp_ms == 1_750_435_916_000


def test_a_millitimestamp_that_contradicts_mixhash_is_refused() -> None:
    result = {**recorded_block(BSC_FERMI), "milliTimestamp": hex(1_768_635_666_451)}
    with pytest.raises(BadBlock):
        block_header(result, millis_in_mixhash=True)


def test_base_mixhash_is_randao_not_milliseconds() -> None:
    result = recorded_block(BASE)
    block = block_header(result, millis_in_mixhash=False)
    assert block.timestamp_ms == 0x6A90EAA7 * 1000  # 2026-08-28 01:55:51 UTC, whole seconds
    assert (block.gas_used, block.gas_limit, block.base_fee_wei) == (25_380_244, 400_000_000, 5_000_000)
    with pytest.raises(BadQuantity):  # read as BEP-520 its last two bytes 0x2021 = 8225 "ms": refused
        block_header(result, millis_in_mixhash=True)


@pytest.mark.parametrize(
    "change",
    [{"timestamp": 1768635666}, {"gasUsed": "0xzz"}, {"number": None}, {"gasUsed": "0x3473bc1"}, {"hash": "0x12"}],
)
def test_unreadable_block_fields_are_typed_errors(change: dict[str, Any]) -> None:
    with pytest.raises(BadWireValue):  # BadQuantity or BadBlock, both BadWireValue: the item fails
        block_header({**recorded_block(BSC_FERMI), **change}, millis_in_mixhash=True)


def test_null_block_and_missing_fields_are_typed_errors() -> None:
    with pytest.raises(BadBlock):
        block_header(None, millis_in_mixhash=False)
    with pytest.raises(BadBlock):
        block_header({k: v for k, v in recorded_block(ETHEREUM).items() if k != "gasLimit"}, millis_in_mixhash=False)


# --- the window -----------------------------------------------------------------------------


def chain_from(template: BlockHeader, offsets_ms: list[int], gas_used: list[int] | None = None) -> list[BlockHeader]:
    """Consecutive blocks after the recorded `template`, at the given millisecond offsets."""
    blocks, parent = [], template.parent_hash
    for i, offset in enumerate(offsets_ms):
        block = BlockHeader(
            number=template.number + i,
            hash=f"{template.number + i:064x}",
            parent_hash=parent,
            timestamp_ms=template.timestamp_ms + offset,
            gas_used=gas_used[i] if gas_used else template.gas_used,
            gas_limit=template.gas_limit,
            base_fee_wei=template.base_fee_wei,
        )
        blocks.append(block)
        parent = block.hash
    return blocks


def test_ethereum_block_time_with_a_missed_slot() -> None:
    head = block_header(recorded_block(ETHEREUM), millis_in_mixhash=False)
    blocks = chain_from(head, [0, 12_000, 36_000, 48_000])  # slot 3 missed: 12, 24, 12 s
    stats = measure(list(reversed(blocks)))  # any order
    assert stats.block_time_seconds == Decimal(16)  # 48 s / 3 intervals
    assert stats.max_block_interval_seconds == Decimal(24)
    assert stats.gas_used_ratio == Decimal(431552) / Decimal(200000000)  # 0x695c0 / 0xbebc200, every block alike
    assert stats.base_fee_gwei == Decimal("0.090870291")  # 0x56a9213 wei
    assert stats.head_number == head.number + 3


def test_bsc_fermi_block_time_from_milliseconds() -> None:
    head = block_header(recorded_block(BSC_FERMI), millis_in_mixhash=True)
    # 0.45 s blocks; seconds alone would read 0, 0, 1, 1, 1 s.
    blocks = chain_from(head, [0, 450, 900, 1_350, 1_800], gas_used=[11_334_430, 0, 5_500_000, 0, 0])
    stats = measure(blocks)
    assert stats.block_time_seconds == Decimal("0.45")
    assert stats.gas_used_ratio == Decimal(16_834_430) / Decimal(275_000_000)
    assert stats.base_fee_gwei == 0


def test_a_timestamp_going_backwards_is_an_anomaly() -> None:
    head = block_header(recorded_block(BASE), millis_in_mixhash=False)
    with pytest.raises(BlockWindowAnomaly, match="before its parent"):
        measure(chain_from(head, [0, 2_000, 1_000]))


def test_a_gap_or_a_reorg_inside_the_window_is_an_anomaly() -> None:
    head = block_header(recorded_block(BASE), millis_in_mixhash=False)
    blocks = chain_from(head, [0, 2_000, 4_000])
    with pytest.raises(BlockWindowAnomaly, match="not consecutive"):
        measure([blocks[0], blocks[2]])
    forked = BlockHeader(**{**blocks[2].__dict__, "parent_hash": "ab" * 32})
    with pytest.raises(BlockWindowAnomaly, match="reorg"):
        measure([blocks[0], blocks[1], forked])
    with pytest.raises(BlockWindowAnomaly):
        measure(blocks[:1])


# --- head agreement -------------------------------------------------------------------------


def test_a_wrong_chain_url_is_reported_and_ignored() -> None:
    # eRPC's failure: one upstream on another chain 30 M blocks ahead made every honest one look behind.
    observations = [
        UrlObservation("https://a", 0.05, chain_id=56, head=75_757_661),
        UrlObservation("https://b", 0.07, chain_id=56, head=75_757_660),
        UrlObservation("https://liar", 0.02, chain_id=1, head=105_757_661),
    ]
    result = agree(observations, expected_chain_id=56, max_lag_blocks=20)
    assert result.reference_head == 75_757_661
    statuses = {v.url: v.status for v in result.verdicts}
    assert statuses == {"https://a": UrlStatus.OK, "https://b": UrlStatus.OK, "https://liar": UrlStatus.WRONG_CHAIN}
    assert result.best_url() == "https://a"


def test_a_far_behind_replica_is_lagging_and_a_far_ahead_minority_is_ignored() -> None:
    observations = [
        UrlObservation("https://a", 0.05, chain_id=1, head=1000),
        UrlObservation("https://b", 0.04, chain_id=1, head=1000),
        UrlObservation("https://stale", 0.01, chain_id=1, head=900),
        UrlObservation("https://fork", 0.01, chain_id=1, head=5000),
        UrlObservation("https://down", 10.0, error="timed out"),
    ]
    result = agree(observations, expected_chain_id=1, max_lag_blocks=5)
    statuses = {v.url: v.status for v in result.verdicts}
    assert result.reference_head == 1000
    assert statuses["https://stale"] is UrlStatus.LAGGING
    assert statuses["https://fork"] is UrlStatus.AHEAD
    assert statuses["https://down"] is UrlStatus.ERROR
    assert result.best_url() == "https://b"  # same head, faster


def test_two_urls_believe_the_higher_head() -> None:
    observations = [
        UrlObservation("https://a", 0.05, chain_id=8453, head=50_546_402),
        UrlObservation("https://replica", 0.05, chain_id=8453, head=50_545_000),
    ]
    result = agree(observations, expected_chain_id=8453, max_lag_blocks=30)
    assert result.reference_head == 50_546_402
    assert [v.status for v in result.verdicts] == [UrlStatus.OK, UrlStatus.LAGGING]


# --- health and change ----------------------------------------------------------------------

ETH_THRESHOLDS = HealthThresholds(
    head_age_degraded_seconds=Decimal(60), head_age_down_seconds=Decimal(300), block_time_degraded_seconds=Decimal(18)
)


def eth_window(offsets: list[int]) -> Any:
    head = block_header(recorded_block(ETHEREUM), millis_in_mixhash=False)
    return measure(chain_from(head, offsets)), head.timestamp_ms + offsets[-1]


def test_health_from_head_age_and_block_time() -> None:
    agreement = agree([UrlObservation("https://a", 0.1, chain_id=1, head=45)], 1, 5)
    stats, head_ms = eth_window([0, 12_000, 24_000])
    assert judge(ETH_THRESHOLDS, agreement, stats, head_ms + 5_000).health is Health.HEALTHY
    verdict = judge(ETH_THRESHOLDS, agreement, stats, head_ms + 61_000)
    assert verdict.health is Health.DEGRADED and "61 s old" in verdict.reasons[0]
    assert judge(ETH_THRESHOLDS, agreement, stats, head_ms + 301_000).health is Health.DOWN
    slow, slow_head = eth_window([0, 24_000, 48_000])  # every other slot missed: 24 s
    assert judge(ETH_THRESHOLDS, agreement, slow, slow_head).health is Health.DEGRADED


def test_no_agreeing_url_is_down_and_too_few_is_degraded() -> None:
    stats, head_ms = eth_window([0, 12_000])
    nobody = agree([UrlObservation("https://a", 0.1, chain_id=56, head=45)], 1, 5)
    assert judge(ETH_THRESHOLDS, nobody, stats, head_ms).health is Health.DOWN
    one = agree([UrlObservation("https://a", 0.1, chain_id=1, head=45)], 1, 5)
    needs_two = ETH_THRESHOLDS.model_copy(update={"min_agreeing_urls": 2})
    assert judge(needs_two, one, stats, head_ms).health is Health.DEGRADED
    assert judge(ETH_THRESHOLDS, one, None, head_ms, anomaly="gap").health is Health.DEGRADED


def reading(health: Health = Health.HEALTHY, **values: Any) -> PublishedReading:
    defaults: dict[str, Any] = {
        "url_statuses": (("https://a", "ok"),),
        "block_time_seconds": Decimal(12),
        "gas_used_ratio": Decimal("0.5"),
        "base_fee_gwei": Decimal(10),
    }
    return PublishedReading(health, **{**defaults, **values})


def test_change_only_beyond_tolerance_or_on_a_health_flip() -> None:
    tolerances = ChangeTolerances()
    assert changes(None, reading(), tolerances) == ["first reading"]
    steady = reading(block_time_seconds=Decimal("13.2"), gas_used_ratio=Decimal("0.65"), base_fee_gwei=Decimal(14))
    assert changes(reading(), steady, tolerances) == []  # +10 %, +0.15, +40 %: within 20 %, 0.2, 50 %
    assert changes(reading(), reading(Health.DEGRADED), tolerances) == ["health healthy -> degraded"]
    assert len(changes(reading(), reading(block_time_seconds=Decimal(15)), tolerances)) == 1  # +25 %
    assert len(changes(reading(), reading(gas_used_ratio=Decimal("0.71")), tolerances)) == 1
    assert len(changes(reading(), reading(url_statuses=(("https://a", "lagging"),)), tolerances)) == 1
    assert len(changes(reading(base_fee_gwei=Decimal(0)), reading(base_fee_gwei=Decimal(0)), tolerances)) == 0
