"""docs/trades-openapi.yaml: a valid OpenAPI 3.1 document naming every route the API serves."""

from __future__ import annotations

from pathlib import Path

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = ROOT / "docs" / "trades-openapi.yaml"


def test_the_document_is_valid_openapi() -> None:
    spec, base_uri = read_from_filename(str(DOCUMENT))
    validate(spec, base_uri=base_uri)


def test_the_document_states_the_routes_statuses_and_limits_the_code_has() -> None:
    from shared.trades.settings import TradesSettings

    paths = yaml.safe_load(DOCUMENT.read_text())["paths"]
    methods = {"get", "post", "put", "patch", "delete"}  # a path may carry `servers` too (the WebSocket's)
    assert {(p, m) for p, ops in paths.items() for m in ops if m in methods} == {
        ("/api/trades/import", "post"),
        ("/api/trades/import/{import_id}", "get"),
        ("/api/trades", "post"),
        ("/api/trades", "get"),
        ("/api/trades/{trade_id}", "get"),
        ("/api/trades/feed", "get"),
        ("/ws/trades/{user_id}", "get"),
        ("/journal", "get"),
        ("/journal/{asset}", "get"),
    }
    settings = TradesSettings()
    post = paths["/api/trades"]["post"]
    assert (
        post["requestBody"]["content"]["application/json"]["schema"]["oneOf"][1]["maxItems"]
        == settings.max_batch_trades
    )
    assert {"202", "400", "401", "403", "413", "503"} <= set(post["responses"])
    limit = next(p for p in paths["/api/trades"]["get"]["parameters"] if p["name"] == "limit")["schema"]
    assert (limit["maximum"], limit["default"]) == (settings.max_page_size, settings.default_page_size)
    assert "404" in paths["/api/trades/{trade_id}"]["get"]["responses"]
    feed_limit = next(p for p in paths["/api/trades/feed"]["get"]["parameters"] if p["name"] == "limit")["schema"]
    assert (feed_limit["maximum"], feed_limit["default"]) == (settings.max_page_size, settings.default_page_size)
    assert {"200", "400", "401", "403"} <= set(paths["/api/trades/feed"]["get"]["responses"])
    assert {"200", "202", "413"} <= set(paths["/api/trades/import"]["post"]["responses"])
    assert {"101", "400", "401", "403"} <= set(paths["/ws/trades/{user_id}"]["get"]["responses"])
    from shared.trades.journal import _ASSETS

    assets = next(p for p in paths["/journal/{asset}"]["get"]["parameters"] if p["name"] == "asset")["schema"]
    assert {f"/journal/{a}" for a in assets["enum"]} == set(_ASSETS)
