"""The quotes function over real HTTP (functions-framework + werkzeug) on real PostgreSQL.

The function is `functions/quotes/main.py` itself, served on a free port; the data is
written with the same store functions the pipelines use.
"""

from __future__ import annotations

import re
import statistics
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator
from werkzeug.serving import make_server

from local import services
from shared.config import get_settings
from shared.crawler import store
from shared.crawler.models import AuditReport, Contract, PriceQuote, TokenProfile
from shared.db.connection import ConnectionPool

ROOT = Path(__file__).resolve().parents[2]
LINK = "ethereum:0x514910771af9ca656af840dff83e8264ecf986ca"
LINK_ON_BSC = "0xF8A0BF9cF54Bb92F17374d9e9A321E6a111a51bD"  # mixed case on purpose
PICO = "solana:PicoXyZ9mJ8s5cVbM2hYkGgqLr7tPdNf3wQzUe4Apump"
SOL_PEPE = "solana:PepeSo1aNa2b3c4d5e6f7g8h9i1j2k3m4n5p6q7r8s9"
ETH_PEPE = "ethereum:0x6982508145454ce325ddbe47a25d4ec3d2311933"
STALE_AFTER = 30.0


@pytest.fixture(scope="module")
def quotes_url(database_url: str):
    """functions/quotes/main.py under functions-framework, on a free port of 127.0.0.1."""
    import functions_framework

    patch = pytest.MonkeyPatch()
    patch.setenv("DATABASE_URL", database_url)
    patch.setenv("PRICE_STALE_AFTER_SECONDS", str(STALE_AFTER))
    get_settings.cache_clear()
    app = functions_framework.create_app(
        target="quotes", source=str(ROOT / "functions/quotes/main.py"), signature_type="http"
    )
    port = services.free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}"
    server.shutdown()
    patch.undo()
    get_settings.cache_clear()


@pytest.fixture
def market(clean_db: str):
    """Tokens, memberships, prices (fresh and stale), an audit; returns the observation times."""
    pool = ConnectionPool(clean_db, size=1)
    now = datetime.now(timezone.utc).replace(microsecond=123456)
    profiles = [
        TokenProfile(
            key="native:bitcoin",
            symbol="BTC",
            name="Bitcoin",
            chain=None,
            address=None,
            coingecko_id="bitcoin",
            market_cap_usd=Decimal("1300000000000.5"),
            market_cap_rank=1,
            source="t",
        ),
        TokenProfile(
            key="native:ethereum",
            symbol="ETH",
            name="Ethereum",
            chain=None,
            address=None,
            coingecko_id="ethereum",
            market_cap_rank=2,
            source="t",
        ),
        TokenProfile(
            key=LINK,
            symbol="LINK",
            name="Chainlink",
            chain="ethereum",
            address=LINK.split(":")[1],
            contracts=(Contract("ethereum", LINK.split(":")[1]), Contract("bsc", LINK_ON_BSC.lower())),
            tags=("oracle",),
            socials=(("twitter", "https://x.com/chainlink"),),
            source="t",
        ),
        TokenProfile(key=PICO, symbol="PICO", name="Pico", chain="solana", address=PICO.split(":")[1], source="t"),
        TokenProfile(
            key=SOL_PEPE,
            symbol="PEPE",
            name="Pepe on Solana",
            chain="solana",
            address=SOL_PEPE.split(":")[1],
            source="t",
        ),
        TokenProfile(
            key=ETH_PEPE, symbol="PEPE", name="Pepe", chain="ethereum", address=ETH_PEPE.split(":")[1], source="t"
        ),
    ]
    times = {"btc": now - timedelta(seconds=2), "eth": now - timedelta(seconds=120)}
    with pool.transaction() as conn:
        store.upsert_tokens(conn, profiles)
        store.set_membership(conn, "top100", ["native:bitcoin", "native:ethereum", LINK], complete=True)
        store.set_membership(conn, "trending", [PICO, SOL_PEPE], complete=True)
        store.insert_prices(
            conn,
            [
                PriceQuote("native:bitcoin", "BTC", Decimal("64123.45000000"), "binance", times["btc"]),
                PriceQuote("native:ethereum", "ETH", Decimal("3456.7"), "binance", times["eth"]),
                PriceQuote(PICO, "PICO", Decimal("0.000000000012345"), "dexscreener", times["btc"]),
                PriceQuote(LINK, "LINK", Decimal("14.5"), "binance", now - timedelta(minutes=90)),
                PriceQuote(LINK, "LINK", Decimal("15.25"), "binance", now - timedelta(minutes=30)),
                PriceQuote(LINK, "LINK", Decimal("14.75"), "binance", times["btc"]),
            ],
            "job-1",
        )
        store.upsert_audits(
            conn,
            [
                AuditReport(
                    PICO,
                    "goplus",
                    Decimal("35.00"),
                    False,
                    "https://gopluslabs.io/token-security/solana/x",
                    None,
                    None,
                    None,
                    {"mintable": "1"},
                    now - timedelta(hours=2),
                ),
            ],
            "job-2",
        )
    with pool.connection() as conn:
        store.fold_candle_ticks(conn)
    pool.close()
    return times


def get(url: str, path: str, **params):
    return httpx.get(url + path, params=params or None, timeout=10)


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def test_latest_price_by_symbol_key_and_contract_with_exact_decimals(quotes_url, market):
    btc = get(quotes_url, "/v1/prices/BTC")
    assert btc.status_code == 200, btc.text
    assert btc.json() == {
        "token": "BTC",
        "token_key": "native:bitcoin",
        "symbol": "BTC",
        "price_usdt": "64123.45000000",
        "source": "binance",
        "observed_at": iso(market["btc"]),
        "age_seconds": btc.json()["age_seconds"],
        "stale": False,
        "stale_after_seconds": STALE_AFTER,
    }
    assert 1.5 < btc.json()["age_seconds"] < 15
    pico = get(quotes_url, f"/v1/prices/{PICO}").json()
    assert pico["price_usdt"] == "0.000000000012345"  # every digit, no exponent
    link = get(quotes_url, f"/v1/prices/bsc:{LINK_ON_BSC}").json()  # another chain's contract, EVM case folded
    assert (link["token_key"], link["price_usdt"]) == (LINK, "14.75")
    upper = "ethereum:0x" + LINK.split(":0x")[1].upper()
    assert get(quotes_url, f"/v1/prices/{upper}").json()["token_key"] == LINK


def test_staleness_follows_the_configured_bound(quotes_url, market):
    eth = get(quotes_url, "/v1/prices/native:ethereum").json()
    assert eth["stale"] is True and eth["age_seconds"] > STALE_AFTER


def test_many_prices_in_request_order_with_reasons_for_the_rest(quotes_url, market):
    response = get(quotes_url, "/v1/prices", tokens=f"ETH,BTC,{PICO},NOPE,ethereum:0x12,{ETH_PEPE}")
    assert response.status_code == 200
    body = response.json()
    assert [(p["token"], p["stale"]) for p in body["prices"]] == [("ETH", True), ("BTC", False), (PICO, False)]
    errors = {e["token"]: e for e in body["errors"]}
    assert errors["NOPE"]["status"] == 404 and "NOPE" in errors["NOPE"]["error"]
    assert errors["ethereum:0x12"]["status"] == 400 and "EVM address" in errors["ethereum:0x12"]["error"]
    assert errors[ETH_PEPE]["status"] == 404 and "no price yet" in errors[ETH_PEPE]["error"]
    repeated = get(quotes_url, "/v1/prices?tokens=BTC&tokens=ETH")
    assert [p["token_key"] for p in repeated.json()["prices"]] == ["native:bitcoin", "native:ethereum"]


def test_unknown_and_ambiguous_tokens(quotes_url, market):
    missing = get(quotes_url, "/v1/prices/native:nosuchcoin")
    assert missing.status_code == 404 and "unknown token" in missing.json()["error"]
    no_price = get(quotes_url, f"/v1/prices/{ETH_PEPE}")
    assert no_price.status_code == 404 and no_price.json()["token_key"] == ETH_PEPE
    ambiguous = get(quotes_url, "/v1/prices/pepe")
    assert ambiguous.status_code == 409
    assert sorted(ambiguous.json()["candidates"]) == sorted([SOL_PEPE, ETH_PEPE])
    malformed = get(quotes_url, "/v1/tokens/unknownchain:abc")
    assert malformed.status_code == 400 and "unknown chain" in malformed.json()["error"]


def test_token_profile_with_latest_audit(quotes_url, market):
    body = get(quotes_url, f"/v1/tokens/{PICO}").json()
    assert body["token_key"] == PICO and body["sets"] == {"trending": 1}
    assert body["price"]["price_usdt"] == "0.000000000012345"
    assert body["audit"]["provider"] == "goplus" and body["audit"]["score"] == "35.00"
    assert body["audit"]["flags"] == {"mintable": "1"} and body["audit"]["is_verified"] is False
    link = get(quotes_url, "/v1/tokens/LINK").json()
    assert link["contracts"] == {"ethereum": LINK.split(":")[1], "bsc": LINK_ON_BSC.lower()}
    assert link["tags"] == ["oracle"] and link["socials"] == [{"type": "twitter", "url": "https://x.com/chainlink"}]
    assert link["audit"] is None and link["audits"] == []
    btc = get(quotes_url, "/v1/tokens/BTC").json()
    assert btc["market_cap_usd"] == "1300000000000.5" and btc["sets"] == {"top100": 1}


def test_token_list_pages_without_gaps_or_repeats(quotes_url, market):
    seen, cursor = [], None
    for _ in range(5):
        page = get(quotes_url, "/v1/tokens", set="top100", limit="2", **({"cursor": cursor} if cursor else {})).json()
        seen += [t["token_key"] for t in page["tokens"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["native:bitcoin", "native:ethereum", LINK]
    everything = get(quotes_url, "/v1/tokens", limit="1000").json()
    assert len(everything["tokens"]) == 6 and everything["next_cursor"] is None
    # A cursor is a position (`<rank>:<token key>`), meaningful in any set: the page after it.
    cursor = get(quotes_url, "/v1/tokens", set="top100", limit="1").json()["next_cursor"]
    assert cursor == "1:native:bitcoin"
    other_set = get(quotes_url, "/v1/tokens", set="trending", cursor=cursor)
    assert other_set.status_code == 200
    assert [t["token_key"] for t in other_set.json()["tokens"]] == [PICO, SOL_PEPE]  # rank 1 after "native:…"


def test_candles_kpis_and_volatility_routes(quotes_url, market):
    # Without `from`: the last `limit` buckets up to now, of which only the current minute has a tick.
    asked_at = datetime.now(timezone.utc)
    candles = get(quotes_url, f"/v1/tokens/{LINK}/candles", resolution="1m", limit="2").json()
    answered_at = datetime.now(timezone.utc)
    assert [c["close"] for c in candles["candles"]] == ["14.75"]
    last = candles["candles"][-1]
    assert last["ticks"] == 1
    # Complete once its minute has ended when the API answered (the tick may sit at a minute's edge).
    ends = datetime.fromisoformat(last["bucket_start"].replace("Z", "+00:00")) + timedelta(minutes=1)
    if ends > answered_at:
        assert last["complete"] is False
    elif ends <= asked_at:
        assert last["complete"] is True
    hourly = get(quotes_url, f"/v1/tokens/{LINK}/candles", resolution="1h", limit="3").json()["candles"]
    assert sum(c["ticks"] for c in hourly) == 3 and hourly[-1]["close"] == "14.75"
    paged = get(
        quotes_url,
        f"/v1/tokens/{LINK}/candles",
        resolution="1m",
        limit="1",
        **{"from": iso(datetime.now(timezone.utc) - timedelta(hours=3))},
    ).json()
    assert paged["candles"][0]["close"] == "14.5" and paged["next_cursor"]
    second = get(
        quotes_url,
        f"/v1/tokens/{LINK}/candles",
        resolution="1m",
        limit="1",
        cursor=paged["next_cursor"],
        **{"from": iso(datetime.now(timezone.utc) - timedelta(hours=3))},
    ).json()
    assert second["candles"][0]["close"] == "15.25"

    kpis = get(quotes_url, "/v1/tokens/LINK/kpis").json()
    assert (kpis["price_usdt"], kpis["open_24h"], kpis["high_24h"], kpis["low_24h"]) == (
        "14.75",
        "14.5",
        "15.25",
        "14.5",
    )
    assert (kpis["change_24h"], kpis["change_pct_24h"], kpis["ticks_24h"]) == ("0.25", "1.7241", 3)
    many = get(quotes_url, "/v1/kpis", tokens=f"LINK,BTC,{ETH_PEPE}").json()
    assert [k["token_key"] for k in many["kpis"]] == [LINK, "native:bitcoin"]
    assert many["errors"][0]["status"] == 404

    vol = get(quotes_url, f"/v1/tokens/{LINK}/volatility", resolution="1m", periods="180").json()
    closes = [Decimal("14.5"), Decimal("15.25"), Decimal("14.75")]
    assert vol["samples"] == 3 and vol["mean"].startswith("14.8333333333")
    assert abs(Decimal(vol["stddev"]) - statistics.stdev(closes)) < Decimal("1e-15")
    assert abs(Decimal(vol["relative"]) - statistics.stdev(closes) / statistics.mean(closes)) < Decimal("1e-15")


@pytest.mark.parametrize(
    "path, params, fragment",
    [
        ("/v1/prices", {}, "tokens is required"),
        ("/v1/prices", {"tokens": ",".join(f"T{i}" for i in range(101))}, "at most 100 tokens"),
        ("/v1/prices", {"tokens": "BTC", "symbol": "ETH"}, "unknown parameter(s) symbol"),
        ("/v1/tokens", {"limit": "0"}, "limit must be from 1 to 1000"),
        ("/v1/tokens", {"limit": "ten"}, "limit must be a whole number"),
        ("/v1/tokens", {"limit": ""}, "parameter limit is empty"),
        ("/v1/tokens/BTC/candles", {"to": ""}, "parameter to is empty"),
        ("/v1/tokens", {"set": "all"}, "set must be one of top100, trending"),
        ("/v1/tokens", {"cursor": "garbage!"}, "cursor"),
        ("/v1/tokens/BTC/candles", {"resolution": "5m"}, "resolution must be one of 1m, 1h, 1d"),
        ("/v1/tokens/BTC/candles", {"from": "2025-06-25T10:00:00"}, "must carry a UTC offset"),
        ("/v1/tokens/BTC/candles", {"from": "yesterday"}, "RFC 3339"),
        ("/v1/tokens/BTC/volatility", {"periods": "1"}, "periods must be from 2 to 1000"),
        ("/v1/prices/ethereum:0xnothex", {}, "neither a token key nor"),
    ],
)
def test_bad_parameters_are_400_with_a_reason(quotes_url, market, path, params, fragment):
    response = get(quotes_url, path, **params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def raw_cursor(document: object) -> str:
    """A cursor in our encoding that this API did not make."""
    import base64
    import json

    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "path, params, fragment",
    [
        # Times outside what datetime and PostgreSQL hold, and offsets that push them out.
        ("/v1/tokens/BTC/candles", {"to": "999999999999"}, "must be before 9999-01-01"),
        ("/v1/tokens/BTC/candles", {"from": "9999-12-31T23:59:59-23:59"}, "must be from 1970-01-01"),
        ("/v1/tokens/BTC/candles", {"from": "0001-01-01T00:00:00+01:00"}, "must be from 1970-01-01"),
        ("/v1/tokens/BTC/candles", {"to": "1969-12-31T23:59:59Z"}, "must be from 1970-01-01"),
        # Cursors: ranks past the integer column, over-long keys, NULs, another form, times out of range.
        ("/v1/tokens", {"cursor": f"{10**30}:a"}, "cursor must be <rank>:<token key>"),
        ("/v1/tokens", {"cursor": "2147483648:a"}, "cursor must be <rank>:<token key>"),
        ("/v1/tokens", {"cursor": "1:" + "a" * 5000}, "cursor must be <rank>:<token key>"),
        ("/v1/tokens", {"cursor": "1:a\u0000b"}, "NUL"),
        ("/v1/tokens", {"cursor": raw_cursor({"k": "tokens", "rank": 1, "key": "a"})}, "cursor must be"),
        ("/v1/tokens/BTC/candles", {"cursor": "9999-12-31T23:59:59-23:59"}, "must be from 1970-01-01"),
        ("/v1/tokens/BTC/candles", {"cursor": "2025-06-25T10:00:00"}, "must carry a UTC offset"),
        # Text PostgreSQL refuses, in parameters and path segments.
        ("/v1/prices", {"tokens": "BTC\x00"}, "NUL"),
        ("/v1/prices/BT%00C", {}, "NUL"),
        ("/v1/kpis", {"tokens": "BTC\n"}, "control character"),
    ],
)
def test_hostile_parameters_are_400_never_500(quotes_url, market, path, params, fragment):
    response = get(quotes_url, path, **params)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_an_empty_window_is_no_candles_not_an_error(quotes_url, market):
    """[from, to) with from at or after to holds no bucket: 200 with none (docs/openapi.yaml)."""
    for window in ({"from": "2025-06-25T10:00:00Z", "to": "2025-06-25T09:00:00Z"}, {"from": "9000-01-01T00:00:00Z"}):
        response = get(quotes_url, f"/v1/tokens/{LINK}/candles", **window)
        assert response.status_code == 200, response.text
        assert response.json()["candles"] == [] and response.json()["next_cursor"] is None


@pytest.mark.parametrize(
    "path",
    [
        "/v1/prices/BT%0AC",  # a newline: werkzeug's router refuses the path before the function runs
        "/v1/tokens/a%0Db/kpis",
        "/favicon.ico",
        "/robots.txt",
        "/v1%0A",
    ],
)
def test_paths_the_server_refuses_get_the_json_error_format(quotes_url, market, path):
    response = httpx.get(quotes_url + path, timeout=10)
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    assert "error" in response.json() and "<html" not in response.text.lower()
    errors = sorted(documented("/v1/prices/{token}", "404").iter_errors(response.json()), key=str)
    assert not errors


def test_a_path_segment_is_decoded_once(quotes_url, market):
    # %2500 arrives as the text "%00" (a symbol nobody carries), never as a NUL decoded twice.
    response = get(quotes_url, "/v1/prices/%2500")
    assert response.status_code == 404, response.text
    assert response.json()["token"] == "%00"


def test_routes_methods_health_and_metrics(quotes_url, market):
    assert get(quotes_url, "/v1/nothing").status_code == 404
    posted = httpx.post(quotes_url + "/v1/prices", content=b"{}")
    assert posted.status_code == 405 and posted.headers["allow"] == "GET" and "read-only" in posted.json()["error"]
    assert get(quotes_url, "/health/liveness").json()["status"] == "alive"
    assert get(quotes_url, "/health/readiness").status_code == 200
    get(quotes_url, "/v1/prices/BTC")
    metrics = get(quotes_url, "/metrics")
    assert metrics.status_code == 200 and 'crawler_quotes_requests_total{route="price",status="200"}' in metrics.text


# --- the stats routes (shared/crawler/quotes/stats_routes.py) ----------------------------------


@pytest.fixture
def chain_stats(clean_db: str):
    """Two readings of BSC (one lying node among three) and one of Ethereum, recorded by the stats store."""
    from local.market.server import SimulatedMarket
    from shared.config import UpstreamSettings
    from shared.db.connection import connect
    from shared.stats.change import ChangeTolerances
    from shared.stats.collect import ChainConfig, read_chain
    from shared.stats.store import record_reading
    from shared.upstream.http import UpstreamHttp
    from shared.upstream.jsonrpc import JsonRpcClient

    conn = connect(clean_db)
    with SimulatedMarket(port=0) as sim:
        sim.clock.freeze(time.time() - 120)
        for name, chain_id, nodes, millis in (
            ("bsc", 56, ["bsc", "bsc-2", "bsc-wrongchain"], True),
            ("ethereum", 1, ["ethereum"], False),
        ):
            urls = tuple(f"{sim.base_url('rpc')}/{node}" for node in nodes)
            config = ChainConfig(name=name, chain_id=chain_id, rpc_urls=urls, millis_in_mixhash=millis)
            clients = {
                u: JsonRpcClient(UpstreamHttp(f"rpc.{name}.{i}", UpstreamSettings(base_url=u, max_retries=0)))
                for i, u in enumerate(urls)
            }
            for _ in range(2 if name == "bsc" else 1):
                sim.clock.advance(60)
                reading = read_chain(config, clients, lambda: int(sim.clock.now() * 1000))
                record_reading(conn, reading, ChangeTolerances())
    from shared.stats.bridge_store import record_sample
    from shared.stats.bridges import BridgeEstimate, BridgeStatus
    from shared.stats.sampling import RouteSample
    from shared.stats.settings import BridgeTolerances

    now_ms = int(time.time() * 1000)
    usdt = BridgeEstimate(
        Decimal("999.331000000000000001"), 999331000000000000001, Decimal(420), Decimal("2.09"), "across"
    )
    for sample in (
        RouteSample("ethereum-bsc-usdt", "lifi", BridgeStatus.OK, 0.4312, usdt, "", now_ms - 1000),
        RouteSample("ethereum-bsc-usdt", "relay", BridgeStatus.RATE_LIMITED, 0.05, None, "relay: HTTP 429", now_ms),
    ):
        record_sample(conn, sample, BridgeTolerances())
    from shared.stats.defillama import DexVolume
    from shared.stats.overview import compose
    from shared.stats.overview_store import record_overview
    from shared.stats.reads import latest_bridge_stats, latest_chain_stats

    volume = DexVolume("BSC", Decimal("2400000000.5"), Decimal("16800000000"), Decimal("-1.25"))
    overview = compose(latest_chain_stats(conn), latest_bridge_stats(conn), {"bsc": volume, "ethereum": "HTTP 503"})
    record_overview(conn, overview, now_ms, Decimal("0.1"), 30)
    conn.close()
    return clean_db


def test_stats_routes_answer_the_latest_readings_and_history(quotes_url, chain_stats):
    chains = get(quotes_url, "/v1/stats/chains").json()["chains"]
    assert [c["chain"] for c in chains] == ["bsc", "ethereum"]
    bsc = chains[0]
    assert bsc["health"] in ("healthy", "degraded", "down") and bsc["published_at"] is not None
    assert Decimal(bsc["block_time_seconds"]) > 0 and isinstance(bsc["block_time_seconds"], str)
    statuses = {u["url"].rsplit("/", 1)[-1]: u["status"] for u in bsc["urls"]}
    assert statuses == {"bsc": "ok", "bsc-2": "ok", "bsc-wrongchain": "wrong_chain"}
    # Each URL's error rate over the last hour: the two readings, none failed (a wrong chain answered).
    health = {u["url"].rsplit("/", 1)[-1]: u for u in bsc["url_health"]["urls"]}
    assert bsc["url_health"]["window_seconds"] == 3600 and set(health) == set(statuses)
    assert all(h["readings"] == 2 and h["errors"] == 0 and h["error_rate"] == "0" for h in health.values())

    history = get(quotes_url, "/v1/stats/chains/bsc/history?limit=1").json()
    assert len(history["readings"]) == 1 and history["next_cursor"] == history["readings"][0]["observed_at"]
    rest = get(quotes_url, f"/v1/stats/chains/bsc/history?limit=5&cursor={history['next_cursor']}").json()
    assert len(rest["readings"]) == 1 and rest["next_cursor"] is None
    assert rest["readings"][0]["observed_at"] < history["readings"][0]["observed_at"]  # newest first
    assert get(quotes_url, "/v1/stats/chains/solana/history").status_code == 404
    assert get(quotes_url, "/v1/stats/chains/BSC%00/history").status_code == 400
    bridges = get(quotes_url, "/v1/stats/bridges").json()["bridges"]
    assert [(b["route"], b["provider"], b["status"]) for b in bridges] == [
        ("ethereum-bsc-usdt", "lifi", "ok"),
        ("ethereum-bsc-usdt", "relay", "rate_limited"),
    ]
    assert bridges[0]["output_amount"] == "999.331000000000000001"  # every digit of an 18-decimal USDT
    assert (bridges[0]["duration_seconds"], bridges[0]["fees_usd"], bridges[0]["response_seconds"]) == (
        "420",
        "2.09",
        "0.4312",
    )
    assert bridges[1]["output_amount"] is None and bridges[1]["published_at"] is None  # a 429 is never published
    overview = get(quotes_url, "/v1/stats/overview").json()
    assert overview["chains"][0]["dex_volume_24h_usd"] == "2400000000.5"
    assert overview["chains"][0]["dex_change_1d_percent"] == "-1.25"
    assert overview["chains"][1]["volume_error"] == "HTTP 503" and overview["chains"][1]["dex_volume_24h_usd"] is None
    assert overview["bridges"][0]["status"] == "ok" and overview["published_at"] is not None
    for path, url, status in [
        ("/v1/stats/overview", "/v1/stats/overview", "200"),
        ("/v1/stats/bridges", "/v1/stats/bridges", "200"),
        ("/v1/stats/chains", "/v1/stats/chains", "200"),
        ("/v1/stats/chains/{chain}/history", "/v1/stats/chains/bsc/history", "200"),
        ("/v1/stats/chains/{chain}/history", "/v1/stats/chains/Nope!/history", "400"),
    ]:
        response = httpx.get(quotes_url + url, timeout=10)
        assert str(response.status_code) == status, (url, response.text)
        errors = sorted(documented(path, status).iter_errors(response.json()), key=str)
        assert not errors, (url, [e.message for e in errors[:3]])


# --- the OpenAPI document ------------------------------------------------------------------------

OPENAPI = yaml.safe_load((ROOT / "docs/openapi.yaml").read_text())


def documented(path: str, status: str = "200") -> Draft202012Validator:
    """A validator for the documented body of `GET path` answering `status`."""
    answer = OPENAPI["paths"][path]["get"]["responses"][status]
    if "$ref" in answer:
        answer = OPENAPI["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    schema = answer["content"]["application/json"]["schema"]
    return Draft202012Validator({**schema, "components": OPENAPI["components"]})


def test_every_route_is_documented():
    from shared.crawler.quotes.api import ROUTES

    # A path parameter is `{token}` on the quotes routes, `{chain}` on the stats routes (stats_routes.py),
    # `{symbol}` on the stock routes (shared/stocks/api.py).
    documented_paths = {re.sub(r"\{[a-z]+\}", "{ref}", p): p for p in OPENAPI["paths"]}
    served = {
        "/v1" + r.pattern.pattern[len("^/v1") : -len("/?$")].replace("([^/]+)", "{ref}").replace("\\", "")
        for r in ROUTES
    }
    assert served == set(documented_paths)
    for route in ROUTES:
        path = next(p for n, p in documented_paths.items() if route.pattern.match(n.replace("{ref}", "btc")))
        names = {p.get("name") for p in OPENAPI["paths"][path]["get"].get("parameters", []) if "$ref" not in p} | {
            OPENAPI["components"]["parameters"][p["$ref"].rsplit("/", 1)[-1]]["name"]
            for p in OPENAPI["paths"][path]["get"].get("parameters", [])
            if "$ref" in p
        }
        assert set(route.params) == names - {"token", "chain", "symbol"}, path


def test_answers_match_the_openapi_document(quotes_url, market):
    cases = [
        ("/v1/prices", f"/v1/prices?tokens=BTC,ETH,NOPE,{PICO}", "200"),
        ("/v1/prices/{token}", "/v1/prices/BTC", "200"),
        ("/v1/prices/{token}", "/v1/prices/pepe", "409"),
        ("/v1/prices/{token}", "/v1/prices/native:nosuchcoin", "404"),
        ("/v1/tokens", "/v1/tokens?set=top100&limit=2", "200"),
        ("/v1/tokens/{token}", f"/v1/tokens/{PICO}", "200"),
        ("/v1/tokens/{token}", "/v1/tokens/LINK", "200"),
        ("/v1/tokens/{token}/candles", f"/v1/tokens/{LINK}/candles?resolution=1h&limit=3", "200"),
        ("/v1/kpis", "/v1/kpis?tokens=LINK,BTC,ETH", "200"),
        ("/v1/tokens/{token}/kpis", "/v1/tokens/LINK/kpis", "200"),
        ("/v1/tokens/{token}/volatility", "/v1/tokens/LINK/volatility?resolution=1m&periods=180", "200"),
        ("/v1/tokens/{token}/volatility", "/v1/tokens/LINK/volatility?periods=0", "400"),
    ]
    for path, url, status in cases:
        response = httpx.get(quotes_url + url, timeout=10)
        assert str(response.status_code) == status, (url, response.text)
        errors = sorted(documented(path, status).iter_errors(response.json()), key=str)
        assert not errors, (url, [e.message for e in errors[:3]])


# Every check schemathesis has: no 5xx, every answer (status, headers, body) one the document
# describes, no schema-valid request rejected (`positive_data_acceptance`: the document states
# every limit the code enforces) and no schema-invalid one accepted (`negative_data_rejection`).
FUZZ_CHECKS = "all"


def test_no_generated_request_breaks_the_openapi_contract(quotes_url, market, chain_stats, tmp_path):
    """schemathesis over every route of docs/openapi.yaml, deterministic so CI cannot flake."""
    import shutil
    import subprocess
    import sys

    cli = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert cli, "schemathesis is a dev dependency (pyproject.toml); run make setup"
    run = subprocess.run(
        [
            cli,
            "run",
            str(ROOT / "docs" / "openapi.yaml"),
            "--url",
            quotes_url,
            "--checks",
            FUZZ_CHECKS,
            "--max-examples",
            "40",
            "--generation-deterministic",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,  # its example cache stays out of the tree
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " passed" in run.stdout[-2000:], run.stdout[-2000:]
    print(run.stdout[-1500:])  # the figures: operations, phases, cases generated


def test_the_documented_token_grammar_names_every_chain_with_its_address_form():
    """docs/openapi.yaml TokenRef: every chain slug of shared/crawler/domain/chains.py, and only those."""
    import re

    from shared.crawler.domain import chains
    from shared.crawler.quotes.reads import parse_ref

    pattern = re.compile(OPENAPI["components"]["schemas"]["TokenRef"]["pattern"])
    for chain in chains.CHAINS:
        address = (
            "0x" + "ab" * 20
            if chains.is_evm(chain.slug)
            else "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263"
            if chain.slug == "solana"
            else "EQBq3w7yO2mL5P2YjbvBwNHhr1FrX5R4F5JnZkFFnjw5SVgm"
        )
        ref = f"{chain.slug}:{address}"
        assert pattern.search(ref), ref
        parse_ref(ref)  # and the code reads it
    for ref in ("mysterychain:0x" + "ab" * 20, "ethereum:0x12", "solana:0OIl", "a" * 65, ".x", "a/b", "a:b"):
        assert not pattern.search(ref), ref


@pytest.mark.parametrize("name", ["from", "to", "cursor"])
@pytest.mark.parametrize(
    "value",
    [
        "9999-12-31T23:59:59.999999-23:59",
        "0001-01-01T00:00:00+00:01",
        "1970-01-01T00:00:00+00:01",  # 1969 in UTC
        "1970-01-01T00:00:00Z",  # the earliest: a window of 1000 days reaches before it
        "0",
        "999999999999.999999",
        "253370764799.999999",
        "2025-06-25T10:00:00+24:00",
        "2025-06-25T10:00:00.1234567Z",
        "2025-02-29T00:00:00Z",
        "2024-02-29T23:59:59+23:59",
        "+275760-09-13T00:00:00Z",
        "１９７０-01-01T00:00:00Z",
        "2025-06-25T10:00:00Z\u0660",
        "2025-W26-3T10:00:00Z",
    ],
)
def test_hand_made_times_are_answered_never_500(quotes_url, market, name, value):
    response = get(quotes_url, f"/v1/tokens/{LINK}/candles", resolution="1d", limit="1000", **{name: value})
    assert response.status_code in (200, 400), response.text
    assert response.headers["content-type"].startswith("application/json")
