"""Bridge stats domain: each provider's parser against its recorded answer (tests/fixtures/upstream/,
provenance in its INDEX.md) with hand-computed values, typed anomalies for answers that are
no quote for the route, the keyless budgets and their rotation, and change-only samples."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from shared.stats import defillama, lifi, oneinch, relay
from shared.stats.bridge_store import sample_changes
from shared.stats.bridges import NATIVE, BridgeRoute, BridgeStatus, QuoteAnomaly, TokenSide, units
from shared.stats.budget import BudgetTooSmall, ProviderBudget, cycle_number, plan, routes_this_cycle
from shared.stats.overview import compose, overview_changes
from shared.stats.reads import BridgeStat, ChainStat
from shared.stats.sampling import RouteSample
from shared.stats.settings import BridgeTolerances, LifiSettings, StatsSettings
from shared.upstream.failures import api_error
from shared.upstream.jsonbody import decode_json
from tests.helpers.upstream_doubles import sample_bytes


def recorded(name: str) -> Any:
    """The recorded answer decoded as the HTTP layer decodes it (fractions as Decimal)."""
    return decode_json(sample_bytes(name))


# The recorded LI.FI example: 1 xDai -> MIVA on Gnosis (chain 100), same chain.
XDAI = TokenSide(chain_id=100, token=NATIVE, symbol="xDai", decimals=18)
MIVA = TokenSide(chain_id=100, token="0x63e62989d9eb2d37dfdb1f93a22f063635b07d51", symbol="MIVA", decimals=18)
LIFI_ROUTE = BridgeRoute(name="gnosis-xdai-miva", source=XDAI, destination=MIVA, amount=Decimal(1), providers=("lifi",))
# The recorded Relay example: 0.1 ETH Base -> Optimism.
ETH_BASE = TokenSide(chain_id=8453, token=NATIVE, symbol="ETH", decimals=18)
ETH_OPTIMISM = TokenSide(chain_id=10, token=NATIVE, symbol="ETH", decimals=18)
RELAY_ROUTE = BridgeRoute(
    name="base-optimism-eth",
    source=ETH_BASE,
    destination=ETH_OPTIMISM,
    amount=Decimal("0.1"),
    providers=("relay",),
)
# The recorded 1inch example: 0.1 WETH -> USDC on Arbitrum.
WETH_ARB = TokenSide(chain_id=42161, token="0x82aF49447D8a07e3bd95BD0d56f35241523fBab1", symbol="WETH", decimals=18)
USDC_ARB = TokenSide(chain_id=42161, token="0xaf88d065e77c8cC2239327C5EDb3A432268e5831", symbol="USDC", decimals=6)
ONEINCH_ROUTE = BridgeRoute(
    name="arbitrum-weth-usdc", source=WETH_ARB, destination=USDC_ARB, amount=Decimal("0.1"), providers=("oneinch",)
)


# --- parsers ---------------------------------------------------------------------------------------


def test_lifi_quote_in_token_units_with_its_fees() -> None:
    estimate = lifi.parse_quote(recorded("lifi.quote.openapi_example.json"), LIFI_ROUTE)
    assert estimate.output_base_units == 21922914496086353975
    assert estimate.output_amount == Decimal("21.922914496086353975")  # 18 decimals, every digit
    assert estimate.duration_seconds is None  # this old example has no executionDuration
    assert estimate.fees_usd == Decimal("0.00")  # no feeCosts, one gas cost of "0.00" USD
    assert estimate.tool == "1inch"
    assert lifi.quote_params(LIFI_ROUTE)["fromAmount"] == "1000000000000000000"


def test_lifi_duration_and_fees_are_exact_decimals() -> None:
    body = recorded("lifi.quote.openapi_example.json")
    body["estimate"]["executionDuration"] = Decimal("39.5")
    body["estimate"]["feeCosts"] = [{"amountUSD": "0.25"}]
    body["estimate"]["gasCosts"][0]["amountUSD"] = "1.84"
    estimate = lifi.parse_quote(body, LIFI_ROUTE)
    assert (estimate.duration_seconds, estimate.fees_usd) == (Decimal("39.5"), Decimal("2.09"))


def test_relay_quote_counts_the_relayer_fee_once() -> None:
    estimate = relay.parse_quote(recorded("relay.quote_v2.base_to_optimism_eth.json"), RELAY_ROUTE)
    assert estimate.output_base_units == 99980224916533275
    assert estimate.output_amount == Decimal("0.099980224916533275")
    assert estimate.duration_seconds == 2
    # gas 0.000302 + relayer 0.041623 (= relayerGas 0.001627 + relayerService 0.039996) + app 0
    assert estimate.fees_usd == Decimal("0.041925")
    assert relay.quote_request(RELAY_ROUTE)["amount"] == "100000000000000000"


def test_oneinch_quote_is_the_output_alone() -> None:
    estimate = oneinch.parse_quote(recorded("oneinch.swap_v6.quote.arbitrum_weth_usdc.json"), ONEINCH_ROUTE)
    assert estimate.output_amount == Decimal("246.061367")  # 246061367 base units of a 6-decimal USDC
    assert (estimate.duration_seconds, estimate.fees_usd) == (None, None)
    assert oneinch.quote_path(ONEINCH_ROUTE) == "/swap/v6.0/42161/quote"


def _edit(body: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(body)
    target = changed
    for step in path[:-1]:
        target = target[step]
    if value is KeyError:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return changed


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (
            ("action", "toToken", "address"),
            "0xddafbb505ad214d7b80b1f830fccc89b60fb7a83",
            "toToken is",
        ),  # USDC, not MIVA
        (("action", "toToken", "decimals"), 6, "decimals"),
        (("action", "toChainId"), 1, "chains"),
        (("estimate", "fromAmount"), "5", "base units in"),
        (("estimate", "toAmount"), "2.19e19", "not a base-unit amount"),
        (("estimate", "toAmount"), 21922914496086353975, "not a base-unit amount"),
        (("estimate", "toAmount"), KeyError, "no estimate.toAmount"),
        (("estimate", "gasCosts", 0, "amountUSD"), "-1", "negative"),
        (("estimate", "gasCosts", 0, "amountUSD"), "NaN", "amountUSD"),
        (("estimate", "executionDuration"), "soon", "executionDuration"),
        (("action",), KeyError, "no action"),
    ],
)
def test_a_lifi_answer_that_is_no_quote_for_the_route_is_an_anomaly(
    path: tuple[Any, ...], value: Any, reason: str
) -> None:
    body = _edit(recorded("lifi.quote.openapi_example.json"), path, value)
    with pytest.raises(QuoteAnomaly, match=reason):
        lifi.parse_quote(body, LIFI_ROUTE)


@pytest.mark.parametrize(
    ("path", "value", "reason"),
    [
        (
            ("details", "currencyOut", "currency", "address"),
            "0x0b2c639c533813f4aa9d7837caf62653d097ff85",
            "currencyOut",
        ),
        (("details", "currencyOut", "currency", "chainId"), 8453, "chain 8453"),
        (("details", "currencyIn", "amount"), "1", "base units in"),
        (("details", "timeEstimate"), None, "timeEstimate"),
        (("fees", "relayer", "amountUsd"), "lots", "relayer"),
        (("details",), KeyError, "no details"),
    ],
)
def test_a_relay_answer_that_is_no_quote_for_the_route_is_an_anomaly(
    path: tuple[Any, ...], value: Any, reason: str
) -> None:
    body = _edit(recorded("relay.quote_v2.base_to_optimism_eth.json"), path, value)
    with pytest.raises(QuoteAnomaly, match=reason):
        relay.parse_quote(body, RELAY_ROUTE)


@pytest.mark.parametrize("body", [{}, {"dstAmount": None}, {"dstAmount": "-3"}, {"dstAmount": "0x10"}, []])
def test_a_oneinch_answer_without_a_base_unit_amount_is_an_anomaly(body: Any) -> None:
    with pytest.raises(QuoteAnomaly):
        oneinch.parse_quote(body, ONEINCH_ROUTE)


def test_provider_error_codes_are_read_from_their_envelopes() -> None:
    assert api_error(sample_bytes("lifi.error.no_quote_404.DERIVED.json"))[0] == 1002
    assert api_error(sample_bytes("relay.error.invalid_input_currency.json")) == (
        "INVALID_INPUT_CURRENCY",
        "Invalid input or output currency",
    )
    assert api_error(b'{"error": "Bad Request", "description": "insufficient liquidity", "statusCode": 400}') == (
        None,
        "insufficient liquidity",
    )
    assert "INVALID_INPUT_CURRENCY" not in relay.NO_ROUTE_CODES  # our configuration is wrong: an error


# --- routes ----------------------------------------------------------------------------------------


def test_route_amounts_are_exact_base_units() -> None:
    assert RELAY_ROUTE.base_units == 10**17
    assert units(246061367, 6) == Decimal("246.061367")
    with pytest.raises(ValidationError, match="more decimals"):
        BridgeRoute(name="x", source=USDC_ARB, destination=WETH_ARB, amount=Decimal("1.0000001"), providers=("lifi",))
    with pytest.raises(ValidationError, match="same-chain"):
        BridgeRoute(name="x", source=ETH_BASE, destination=ETH_OPTIMISM, amount=Decimal(1), providers=("oneinch",))


# --- budgets ---------------------------------------------------------------------------------------


def test_lifi_keyless_budget_rotates_the_default_routes() -> None:
    settings = StatsSettings()
    plans = settings.bridge_plans()
    # 75 quotes / 7200 s x 0.9 x 120 s = 1.125 -> one LI.FI quote per cycle: 60 per 2 h, under 75.
    assert plans["lifi"].per_cycle == 1 and plans["lifi"].every_cycles == 2
    assert plans["lifi"].requests_per_window(settings.budget("lifi"), 120) == 60
    # Relay: 50/min x 0.9 x 2 min = 90 per cycle: both routes every cycle. 1inch: 1/s -> 108 per cycle.
    assert (plans["relay"].per_cycle, plans["relay"].every_cycles) == (2, 1)
    assert (plans["oneinch"].per_cycle, plans["oneinch"].every_cycles) == (1, 1)
    sampled = [routes_this_cycle(plans["lifi"], cycle) for cycle in range(4)]
    assert sampled == [("ethereum-base-usdc",), ("ethereum-bsc-usdt",)] * 2


def test_the_older_200_per_2h_figure_samples_every_route_every_cycle() -> None:
    settings = StatsSettings(lifi=LifiSettings(budget_requests=200))
    assert settings.bridge_plans()["lifi"].per_cycle == 2  # 3 allowed, 2 routes


def test_rotation_never_exceeds_the_budget_and_samples_every_route() -> None:
    budget = ProviderBudget(requests=200, window_seconds=7200)
    routes = [f"r{i}" for i in range(7)]
    found = plan("lifi", routes, budget, 120)
    assert found.per_cycle == 3 and found.every_cycles == 3
    window = [name for cycle in range(60) for name in routes_this_cycle(found, cycle)]  # 60 cycles = 2 h
    assert len(window) == 180 <= 200
    assert {window.count(r) for r in routes} <= {25, 26}  # evenly


def test_a_budget_below_one_request_per_cycle_is_refused_at_startup() -> None:
    with pytest.raises(BudgetTooSmall, match="fewer than one"):
        plan("lifi", ["a"], ProviderBudget(requests=50, window_seconds=7200), 120)
    with pytest.raises(ValidationError, match="lifi"):
        StatsSettings(lifi=LifiSettings(budget_requests=50))


def test_the_cycle_comes_from_the_tick_time() -> None:
    assert cycle_number(1_760_000_039.9, 120) == cycle_number(1_760_000_000.0, 120) == 14_666_666
    assert cycle_number(1_760_000_040.0, 120) == 14_666_667


# --- change-only -----------------------------------------------------------------------------------


def _sample(status: BridgeStatus, output: str | None = "1000", duration: str | None = "180") -> RouteSample:
    from shared.stats.bridges import BridgeEstimate

    estimate = (
        BridgeEstimate(Decimal(output), 0, None if duration is None else Decimal(duration), Decimal("2.09"), "across")
        if output is not None
        else None
    )
    return RouteSample("r", "lifi", status, 0.4, estimate, "", 1)


def test_a_sample_is_news_only_on_a_status_change_or_beyond_tolerance() -> None:
    tolerances = BridgeTolerances()
    first = _sample(BridgeStatus.OK)
    published = {"status": "ok", "output_amount": "1000", "duration_seconds": "180", "fees_usd": "2.09"}
    assert sample_changes(None, first, tolerances) == ["first sample"]
    assert sample_changes(published, _sample(BridgeStatus.OK, "1000.4", "200"), tolerances) == []  # 0.04 %, 11 %
    assert sample_changes(published, _sample(BridgeStatus.OK, "990"), tolerances) == ["output amount 1000 -> 990"]
    moved = sample_changes(published, _sample(BridgeStatus.SLOW, duration="900"), tolerances)
    assert moved == ["status ok -> slow", "duration seconds 180 -> 900 s"]
    assert sample_changes(published, _sample(BridgeStatus.NO_ROUTE, None), tolerances)[0] == "status ok -> no_route"
    # A 429 says nothing about the bridge: never news, never compared.
    assert sample_changes(published, _sample(BridgeStatus.RATE_LIMITED, None), tolerances) == []


# --- overview --------------------------------------------------------------------------------------


def test_defillama_volume_from_the_recorded_envelope() -> None:
    volume = defillama.parse_dex_overview(
        recorded("defillama.overview_options.ethereum.openapi_example.json"), "Ethereum"
    )
    assert (volume.volume_24h_usd, volume.volume_7d_usd, volume.change_1d_percent) == (
        Decimal(38508),
        Decimal(244966),
        Decimal("-33.23"),
    )
    assert defillama.overview_path("OP Mainnet") == "/overview/dexs/OP%20Mainnet"


@pytest.mark.parametrize(
    ("change", "reason"),
    [({"chain": "Base"}, "not 'Ethereum'"), ({"total24h": None}, "no total24h"), ({"total7d": "-5"}, "negative")],
)
def test_a_defillama_answer_for_another_chain_or_without_volumes_is_an_anomaly(
    change: dict[str, Any], reason: str
) -> None:
    body = {**recorded("defillama.overview_options.ethereum.openapi_example.json"), **change}
    with pytest.raises(defillama.VolumeAnomaly, match=reason):
        defillama.parse_dex_overview(body, "Ethereum")


def _chain(name: str, health: str) -> ChainStat:
    return ChainStat(
        name, datetime.now(UTC), health, (), 1, Decimal(1), Decimal("0.45"), Decimal(1), None, None, (), None
    )


def _bridge(provider: str, status: str, duration: str | None) -> BridgeStat:
    d = None if duration is None else Decimal(duration)
    output = Decimal(999) if status in ("ok", "slow") else None
    return BridgeStat("r", provider, datetime.now(UTC), status, Decimal("0.3"), output, None, d, None, None, "", None)


def test_overview_summarises_health_volume_and_the_fastest_bridge() -> None:
    volume = defillama.DexVolume("BSC", Decimal("2400000000"), Decimal("16800000000"), Decimal("1.5"))
    doc = compose(
        [_chain("bsc", "healthy"), _chain("ethereum", "down")],
        [_bridge("lifi", "ok", "420"), _bridge("relay", "ok", "20"), _bridge("oneinch", "error", None)],
        {"bsc": volume, "ethereum": "defillama: GET /overview/dexs/Ethereum: HTTP 503"},
    )
    assert doc["health_counts"] == {"healthy": 1, "degraded": 0, "down": 1}
    assert doc["chains"][0]["dex_volume_24h_usd"] == "2400000000" and doc["chains"][1]["volume_error"].endswith("503")
    assert doc["bridges"] == [
        {
            "route": "r",
            "status": "ok",
            "providers": {"lifi": "ok", "oneinch": "error", "relay": "ok"},
            "fastest_provider": "relay",
            "fastest_duration_seconds": "20",
        }
    ]
    assert overview_changes(doc, doc, Decimal("0.1")) == []
    busier = defillama.DexVolume("BSC", Decimal("2700000000"), Decimal("16800000000"), None)  # +12.5 %
    moved = compose(
        [_chain("bsc", "degraded"), _chain("ethereum", "down")],
        [_bridge("lifi", "ok", "420"), _bridge("relay", "rate_limited", None)],
        {"bsc": busier},
    )
    assert overview_changes(doc, moved, Decimal("0.1")) == [
        "bsc health healthy -> degraded",
        "bsc 24h DEX volume 2400000000 -> 2700000000 USD",
    ]  # the route's best status is still ok: no change there
