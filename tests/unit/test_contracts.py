"""The published event contract (schemas/, shared.crawler.contracts): files equal their models, the schema
and the parser agree on valid and invalid examples, what we emit validates, and every event we
emit names its schema in `dataschema`."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest

from shared import schemas
from shared.crawler import contracts
from shared.crawler.domain.schedule import SCHEDULES, tick_jobs
from shared.crawler.jobs import parse_job_message
from shared.crawler.models import PriceQuote
from shared.crawler.pipelines.price_events import price_updated_data
from shared.errors import BadMessage
from shared.events import OutboundEvent
from shared.kafka import binary_headers
from shared.stats import contracts as stats_contracts
from shared.stocks import contracts as stocks_contracts

# The contracts this file checks (the trade system's: tests/unit/test_trade_contracts.py).
SCHEMA_MODELS = {**contracts.SCHEMA_MODELS, **stats_contracts.SCHEMA_MODELS, **stocks_contracts.SCHEMA_MODELS}
EVENT_DATASCHEMAS = {
    **contracts.EVENT_DATASCHEMAS,
    **stats_contracts.EVENT_DATASCHEMAS,
    **stocks_contracts.EVENT_DATASCHEMAS,
}

ROOT = Path(__file__).resolve().parents[2]


def _validator(uri: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(schemas.schema_file(uri).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.mark.parametrize("uri", sorted(SCHEMA_MODELS))
def test_each_schema_file_is_what_its_model_generates(uri: str) -> None:
    path = schemas.schema_file(uri)
    rewrite = "run python -m shared.crawler.contracts, shared.stats.contracts and shared.stocks.contracts"
    assert path.is_file(), f"{path} missing: {rewrite}"
    assert json.loads(path.read_text()) == schemas.model_schema(uri, SCHEMA_MODELS[uri]), rewrite
    assert json.loads(path.read_text())["$id"] == uri


def test_every_schema_file_is_published_under_its_uri() -> None:
    from shared.trades import contracts as trade_contracts  # the trade system's schemas live beside these

    published = {schemas.schema_file(uri).name for uri in EVENT_DATASCHEMAS.values()}
    published |= {schemas.schema_file(uri).name for uri in trade_contracts.SCHEMA_MODELS}
    assert published == {p.name for p in (ROOT / "schemas").glob("*.json")}


NOW = "2025-06-25T21:00:00Z"
ORIGINAL = {"job_type": "price", "token_type": "top100", "symbols": ["BTC", "ETH", "SOL"], "timestamp": NOW}
VALID_JOBS = [
    ORIGINAL,
    {**ORIGINAL, "symbols": [" btc ", "1000SATS", "BTC.B", "USD+"], "unknown_field": "tolerated"},
    {
        **ORIGINAL,
        "job_id": "top100-price:20250625T210000.000000Z:0",
        "batch": 0,
        "batches": 2,
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "expires_at": "2025-06-25T21:00:15Z",
    },
    {
        "job_type": "audit",
        "token_type": "trending",
        "symbols": [],
        "timestamp": NOW,
        "token_keys": ["solana:So11111111111111111111111111111111111111112"],
        "contracts": [{"chain": "ethereum", "address": "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"}],
    },
    {"job_type": "metadata", "token_type": "top100", "timestamp": "2025-06-25T21:00:00.123+02:00"},
]
INVALID_JOBS = [
    ("missing timestamp", {"job_type": "price", "token_type": "top100"}),
    ("unknown job type", {**ORIGINAL, "job_type": "prices"}),
    ("unknown token set", {**ORIGINAL, "token_type": "top200"}),
    ("SQL in a symbol", {**ORIGINAL, "symbols": ["BTC'; DROP TABLE tokens;--"]}),
    ("a quote in a symbol", {**ORIGINAL, "symbols": ['ETH"']}),
    ("an empty symbol", {**ORIGINAL, "symbols": [""]}),
    ("a 33-character symbol", {**ORIGINAL, "symbols": ["A" * 33]}),
    ("symbols not a list", {**ORIGINAL, "symbols": "BTC"}),
    ("a number as timestamp", {**ORIGINAL, "timestamp": 5}),
    ("not a timestamp", {**ORIGINAL, "timestamp": "yesterday"}),
    ("a negative batch", {**ORIGINAL, "batch": -1}),
    ("zero batches", {**ORIGINAL, "batches": 0}),
    ("a batch as text", {**ORIGINAL, "batch": "1"}),
    ("NUL in the job id", {**ORIGINAL, "job_id": "a\x00b"}),
    ("a 129-character job id", {**ORIGINAL, "job_id": "j" * 129}),
    ("a token key without a chain", {**ORIGINAL, "token_keys": ["nochain"]}),
    ("a control character in a token key", {**ORIGINAL, "token_keys": ["ethereum:0x\x01"]}),
    ("an upper-case chain", {**ORIGINAL, "contracts": [{"chain": "ETH", "address": "0xabc"}]}),
    ("a contract without an address", {**ORIGINAL, "contracts": [{"chain": "ethereum"}]}),
]


@pytest.mark.parametrize("job", VALID_JOBS, ids=range(len(VALID_JOBS)))
def test_the_schema_and_the_parser_accept_the_same_valid_jobs(job: dict) -> None:
    _validator(contracts.JOB_MESSAGE_SCHEMA).validate(job)
    parse_job_message(json.dumps(job))


@pytest.mark.parametrize(("what", "job"), INVALID_JOBS, ids=[w for w, _ in INVALID_JOBS])
def test_the_schema_and_the_parser_reject_the_same_invalid_jobs(what: str, job: dict) -> None:
    assert list(_validator(contracts.JOB_MESSAGE_SCHEMA).iter_errors(job)), f"the schema accepts {what}"
    with pytest.raises(BadMessage):
        parse_job_message(json.dumps(job))


def test_what_the_scheduler_emits_follows_the_contract() -> None:
    validator = _validator(contracts.JOB_MESSAGE_SCHEMA)
    tick = datetime(2025, 6, 25, 21, 0, 5, tzinfo=UTC)
    for schedule in SCHEDULES.values():
        for _key, job in tick_jobs(
            schedule, tick, symbols=["BTC", "ETH"], traceparent="00-" + "1" * 32 + "-" + "2" * 16 + "-01"
        ):
            validator.validate(job)


def test_price_updated_data_follows_the_contract() -> None:
    quotes = [
        PriceQuote(
            "native:bitcoin",
            "BTC",
            Decimal("67012.345600000001"),
            "binance",
            datetime(2025, 6, 25, 21, 0, 0, 123000, tzinfo=UTC),
        ),
        PriceQuote(
            "ethereum:0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
            "WETH",
            Decimal("0.000000000012345"),
            "dexscreener",
            datetime(2025, 6, 25, 21, 0, 0, tzinfo=UTC),
        ),
    ]
    data = json.loads(json.dumps(price_updated_data("job-1", "top100", quotes)))
    _validator(contracts.PRICE_UPDATED_SCHEMA).validate(data)
    contracts.PriceUpdated.model_validate(data)
    for bad in (
        {**data, "prices": []},
        {**data, "token_set": "top200"},
        {**data, "prices": [{**data["prices"][0], "price_usdt": 67012.3456}]},
        {**data, "prices": [{**data["prices"][0], "price_usdt": "6.7e4"}]},
    ):
        assert list(_validator(contracts.PRICE_UPDATED_SCHEMA).iter_errors(bad))
        with pytest.raises(ValueError):
            contracts.PriceUpdated.model_validate(bad)


def test_every_event_we_emit_names_its_schema() -> None:
    """Every OutboundEvent(...) in shared/ passes dataschema= the schema of its type."""
    constants = {}
    calls = []
    for path in (ROOT / "shared").rglob("*.py"):
        if path.is_relative_to(ROOT / "shared" / "trades"):
            continue  # the trade system's events: tests/unit/test_trade_contracts.py
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                constants[node.targets[0].id] = str(node.value.value)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "OutboundEvent":
                names = {k.arg: k.value.id for k in node.keywords if isinstance(k.value, ast.Name)}
                if "type" not in names and path.name == "event_outbox.py":
                    continue  # rebuilds an event staged by one of the calls below, its fields read back
                calls.append((path.relative_to(ROOT), names))
    assert len(calls) == 8
    for path, keywords in calls:
        event_type = constants[keywords["type"]]
        assert "dataschema" in keywords, f"{path}: {event_type} without dataschema"
        schema_uri = (
            getattr(contracts, keywords["dataschema"], None)
            or getattr(stats_contracts, keywords["dataschema"], None)
            or getattr(stocks_contracts, keywords["dataschema"])
        )
        assert EVENT_DATASCHEMAS[event_type] == schema_uri, path


def test_dataschema_travels_as_a_kafka_header() -> None:
    event = OutboundEvent(
        type="price-crawler.price.updated",
        source="/price-crawler/price",
        data={},
        dataschema=contracts.PRICE_UPDATED_SCHEMA,
    )
    assert ("ce_dataschema", contracts.PRICE_UPDATED_SCHEMA.encode()) in binary_headers(event)
    assert not [h for h in binary_headers(OutboundEvent(type="t", source="/s", data={})) if h[0] == "ce_dataschema"]
