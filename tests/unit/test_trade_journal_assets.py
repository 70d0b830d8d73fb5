"""GET /journal and its assets (shared/trades/journal), without infrastructure: what the browser test relies on."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.trades.journal import journal_response
from shared.trades.settings import TradesSettings


def test_the_page_names_the_feed_url_and_allows_only_its_own_scripts():
    settings = TradesSettings(token_key=SecretStr("k" * 32), feed_url="wss://feed.example.com")
    page = journal_response("/journal", settings)
    assert page is not None and page.status == 200
    text = page.body.decode()
    assert '<meta name="trades-feed-url" content="wss://feed.example.com">' in text
    assert '<script src="/journal/journal.js"></script>' in text and "<script>" not in text  # no inline script
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "connect-src 'self' wss://feed.example.com" in csp
    assert page.headers["Referrer-Policy"] == "no-referrer" and page.headers["Cache-Control"] == "no-store"


def test_without_a_feed_url_the_page_derives_it_and_may_connect_to_any_socket():
    page = journal_response("/journal/", TradesSettings())
    assert page is not None and 'content=""' in page.body.decode()
    assert "connect-src 'self' ws: wss:" in page.headers["Content-Security-Policy"]


def test_the_assets_are_served_with_their_types_and_nothing_else_is():
    script = journal_response("/journal/journal.js", TradesSettings())
    style = journal_response("/journal/journal.css", TradesSettings())
    assert script is not None and script.headers["Content-Type"].startswith("text/javascript")
    assert style is not None and style.headers["Content-Type"].startswith("text/css")
    # the page never reads a token from the query, and never parses money into numbers
    assert b"location.search" not in script.body and b"parseFloat" not in script.body
    assert b"Number(" not in script.body
    for path in ("/journal/../settings.py", "/journal/journal.html", "/journal/x.js", "/api/trades"):
        assert journal_response(path, TradesSettings()) is None


def test_a_feed_url_that_is_not_a_websocket_url_is_refused():
    for bad in ("javascript:alert(1)", 'ws://x"><script>', "http://feed.example.com"):
        with pytest.raises(ValidationError):
            TradesSettings(feed_url=bad)
