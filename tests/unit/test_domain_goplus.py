"""GoPlus audits and the audit score: real WETH and Solana USDC samples, synthetic risky tokens."""

import copy
import json
import re
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from shared.crawler.domain import audit_score
from shared.crawler.domain.audit_score import score_evm, score_solana
from shared.crawler.domain.normalize_goplus import (
    audit_from_goplus,
    audit_from_goplus_evm,
    audit_from_goplus_solana,
    goplus_result_entry,
)
from shared.crawler.models import AuditReport, TokenFailure
from tests.helpers.upstream_doubles import samples_dir

SAMPLES = samples_dir()
DOCS = Path(__file__).resolve().parents[2] / "docs" / "audit-score.md"
NOW = datetime(2025, 6, 25, 21, 1, tzinfo=timezone.utc)
WETH = "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"
USDC_MINT = "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v"


def sample(name):
    with open(SAMPLES / name, encoding="utf-8") as f:
        return json.load(f, parse_float=Decimal)


def weth_entry():
    return sample("goplus.token_security.eth_weth.json")["result"][WETH]


def clean_evm(**changes):
    """A token with every EVM flag reported safe, then `changes`."""
    entry = {name: "0" for name in audit_score.EVM_FLAG_PENALTIES}
    entry.update(
        is_honeypot="0",
        is_open_source="1",
        buy_tax="0",
        sell_tax="0",
        honeypot_with_same_creator="0",
        holders=[{"address": "0x" + "1" * 40, "percent": "0.05", "is_contract": 0, "is_locked": 0}],
        lp_holders=[{"address": "0x" + "2" * 40, "percent": "1", "is_locked": 1}],
    )
    entry.update(changes)
    return entry


# --- real samples --------------------------------------------------------------------------


def test_real_weth_audit_scores_high():
    payload = sample("goplus.token_security.eth_weth.json")
    entry = goplus_result_entry(payload, "ethereum", "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", f"ethereum:{WETH}")
    report = audit_from_goplus_evm(f"ethereum:{WETH}", "ethereum", WETH, entry, NOW)
    assert isinstance(report, AuditReport)
    assert report.score == Decimal("100.00") and report.score.as_tuple().exponent == -2
    assert report.provider == "goplus" and report.is_verified is True and report.is_honeypot is False
    assert report.buy_tax == Decimal(0) and report.sell_tax == Decimal(0)
    assert report.report_url == f"https://gopluslabs.io/token-security/1/{WETH}"
    assert report.flags is entry and report.flags["token_symbol"] == "WETH"  # raw, unmodified
    assert "lp_holders" in report.unknown_flags and "cannot_sell_all" in report.unknown_flags
    assert report.audited_at == NOW


def test_real_solana_usdc_audit_is_lower_for_mint_and_freeze_authority():
    report = audit_from_goplus_solana(
        f"solana:{USDC_MINT}", USDC_MINT, sample("goplus.solana_token_security.usdc.result_entry.json"), NOW
    )
    assert isinstance(report, AuditReport)
    rules = dict(report.penalties)
    assert rules["mintable"] == 15 and rules["freezable"] == 20 and rules["metadata_mutable"] == 5
    assert rules["holder_concentration"] == Decimal("2.544")  # top-5 share 26.36 %
    assert rules["trusted_token"] == -10
    assert report.score == Decimal("67.46")
    assert report.score < audit_from_goplus(f"ethereum:{WETH}", "ethereum", WETH, weth_entry(), NOW).score
    assert report.is_verified is True  # trusted_token
    assert report.is_honeypot is None and report.buy_tax is None and report.sell_tax is None
    assert report.report_url == f"https://gopluslabs.io/token-security/solana/{USDC_MINT}"
    assert report.unknown_flags == ()


# --- synthetic EVM -------------------------------------------------------------------------


def test_clean_token_scores_100_and_reports_nothing_unknown():
    result = score_evm(clean_evm())
    assert result.score == Decimal("100.00") and result.penalties == () and result.unknown_flags == ()


@pytest.mark.parametrize("stop", [{"is_honeypot": "1"}, {"sell_tax": "1"}, {"sell_tax": "1.0", "is_honeypot": "0"}])
def test_honeypots_score_zero_even_when_trusted(stop):
    result = score_evm(clean_evm(trust_list="1", **stop))
    assert result.score == Decimal("0.00")


def test_taxes_are_proportional_and_capped():
    assert dict(score_evm(clean_evm(buy_tax="0.05", sell_tax="0.1")).penalties) == {
        "buy_tax": Decimal(5),
        "sell_tax": Decimal(10),
    }
    assert dict(score_evm(clean_evm(buy_tax="0.5", sell_tax="0.9")).penalties) == {
        "buy_tax": Decimal(20),
        "sell_tax": Decimal(30),
    }
    assert score_evm(clean_evm(buy_tax="0.5", sell_tax="0.9")).score == Decimal("50.00")


def test_every_capability_flag_costs_its_weight():
    for name, weight in audit_score.EVM_FLAG_PENALTIES.items():
        assert score_evm(clean_evm(**{name: "1"})).score == Decimal(100) - weight, name
    assert score_evm(clean_evm(is_open_source="0")).score == Decimal(75)
    assert score_evm(clean_evm(honeypot_with_same_creator="3")).score == Decimal(90)


def test_a_very_risky_token_is_clamped_at_zero():
    risky = clean_evm(**{name: "1" for name in audit_score.EVM_FLAG_PENALTIES}, is_open_source="0", buy_tax="0.3")
    assert score_evm(risky).score == Decimal("0.00")


def test_holder_concentration_ignores_contracts_locked_and_burned():
    holders = [
        {"address": "0x" + "a" * 40, "percent": "0.45", "is_contract": 0, "is_locked": 0},
        {"address": "0x" + "b" * 40, "percent": "0.30", "is_contract": 1, "is_locked": 0},  # a pool
        {"address": "0x" + "c" * 40, "percent": "0.10", "is_contract": 0, "is_locked": 1},  # locked
        {"address": "0x000000000000000000000000000000000000dEaD", "percent": "0.10", "is_contract": 0, "is_locked": 0},
    ]
    rules = dict(score_evm(clean_evm(holders=holders)).penalties)
    assert rules["holder_concentration"] == Decimal(10)  # C = 0.45 -> 20 * (0.25 / 0.5)
    many = [{"address": f"0x{i:040x}", "percent": "0.2", "is_contract": 0, "is_locked": 0} for i in range(1, 13)]
    assert dict(score_evm(clean_evm(holders=many)).penalties)["holder_concentration"] == Decimal(20)


def test_unlocked_liquidity_costs_in_proportion():
    lp = [
        {"address": "0x" + "d" * 40, "percent": "0.6", "is_locked": 1},
        {"address": "0x" + "e" * 40, "percent": "0.4", "is_locked": 0},
    ]
    assert dict(score_evm(clean_evm(lp_holders=lp)).penalties)["lp_unlocked"] == Decimal("6.0")
    burned = [{"address": "0x0000000000000000000000000000000000000000", "percent": "1", "is_locked": 0}]
    assert score_evm(clean_evm(lp_holders=burned)).penalties == ()


def test_missing_keys_cost_nothing_but_are_listed():
    result = score_evm({"is_open_source": "1", "transfer_tax": ""})
    assert result.score == Decimal(100)
    assert {"is_honeypot", "buy_tax", "sell_tax", "holders", "lp_holders", "is_mintable"} <= set(result.unknown_flags)


def test_empty_string_taxes_are_unknown():
    report = audit_from_goplus_evm("k", "ethereum", WETH, clean_evm(buy_tax="", sell_tax=""), NOW)
    assert report.buy_tax is None and report.sell_tax is None
    assert {"buy_tax", "sell_tax"} <= set(report.unknown_flags)


# --- envelopes and messy entries -----------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"code": 1, "message": "OK", "result": {}}, "no security data"),
        ({"code": 1, "message": "OK", "result": None}, "no security data"),
        ({"code": 1, "message": "OK", "result": {WETH: {}}}, "no security data"),
        ({"code": 4029, "message": "too many requests", "result": {}}, "4029"),
        ({"code": 2018, "message": "chain not supported"}, "chain not supported"),
        (None, "goplus code"),
    ],
)
def test_envelope_failures(payload, reason):
    result = goplus_result_entry(payload, "ethereum", WETH, "k")
    assert isinstance(result, TokenFailure) and reason in result.reason and result.ref == "k"


def test_partial_data_code_2_is_accepted_and_solana_lookup_is_exact():
    payload = {"code": 2, "message": "partial", "result": {USDC_MINT: {"trusted_token": 1}}}
    assert goplus_result_entry(payload, "solana", USDC_MINT, "k") == {"trusted_token": 1}
    assert isinstance(goplus_result_entry(payload, "solana", USDC_MINT.lower(), "k"), TokenFailure)


@pytest.mark.parametrize("entry", [{}, None, "x", {"token_name": "X", "holders": []}])
def test_entries_without_flags_are_failures_not_perfect_scores(entry):
    assert isinstance(audit_from_goplus_evm("k", "ethereum", WETH, entry, NOW), TokenFailure)
    assert isinstance(audit_from_goplus_solana("k", USDC_MINT, entry, NOW), TokenFailure)


def test_chain_and_address_problems_are_failures():
    assert "does not cover" in audit_from_goplus_evm("k", "sui", "0x2::sui::SUI", clean_evm(), NOW).reason
    assert "does not cover" in audit_from_goplus_evm("k", "solana", USDC_MINT, clean_evm(), NOW).reason
    tron = audit_from_goplus("k", "tron", "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t", clean_evm(), NOW)
    assert tron.report_url == "https://gopluslabs.io/token-security/tron/TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"
    assert "EVM address" in audit_from_goplus_evm("k", "ethereum", "0x12", clean_evm(), NOW).reason
    assert "Solana address" in audit_from_goplus_solana("k", "bad", {"trusted_token": 1}, NOW).reason
    with pytest.raises(ValueError):
        audit_from_goplus_evm("k", "ethereum", WETH, clean_evm(), datetime(2025, 1, 1))


# --- synthetic Solana ----------------------------------------------------------------------


def test_solana_risks():
    usdc = sample("goplus.solana_token_security.usdc.result_entry.json")
    assert score_solana({**usdc, "non_transferable": "1"}).score == Decimal(0)
    hooked = copy.deepcopy(usdc)
    hooked.update(trusted_token=0, transfer_hook=[{"address": "Hook1111111111111111111111111111111111111111"}])
    hooked["balance_mutable_authority"]["status"] = "1"
    hooked["mintable"]["authority"][0]["malicious_address"] = 1
    rules = dict(score_solana(hooked).penalties)
    assert (
        rules["transfer_hook"] == 15 and rules["balance_mutable_authority"] == 30 and rules["malicious_authority"] == 30
    )
    assert score_solana(hooked).score == Decimal(0)
    report = audit_from_goplus_solana("k", USDC_MINT, hooked, NOW)
    assert report.is_verified is False


def test_solana_verified_without_trust_when_immutable_and_hookless():
    entry = {
        "trusted_token": 0,
        "metadata_mutable": {"status": "0", "metadata_upgrade_authority": []},
        "transfer_hook": [],
    }
    report = audit_from_goplus_solana("k", USDC_MINT, entry, NOW)
    assert report.is_verified is True
    assert "mintable" in report.unknown_flags and "holders" in report.unknown_flags


# --- the documented formula is the implemented one -----------------------------------------


def test_docs_table_matches_the_weights():
    text = DOCS.read_text(encoding="utf-8")
    for name, weight in {**audit_score.EVM_FLAG_PENALTIES, **audit_score.SOLANA_AUTHORITY_PENALTIES}.items():
        assert re.search(rf"\| {name} \|[^\n]*\| -{weight} \|", text), name
    for name in (
        "is_honeypot",
        "sell_tax_100",
        "non_transferable",
        "trust_list",
        "trusted_token",
        "holder_concentration",
        "lp_unlocked",
    ):
        assert f"| {name} |" in text
