"""The trade-journal page (GET /journal): static HTML, CSS and JS served by the trades API, no build step.

The page reads the caller's trades from `GET /api/trades` and follows `WS /ws/trades/{user_id}`
(the trade_feed function) for their market context, their alerts and what commits next. The
feed's base URL is `TRADES_FEED_URL` (empty: the page's host on port 8097, as under `make up`).
"""

from __future__ import annotations

import html
from functools import cache
from pathlib import Path

from shared.runtime.verdict import HttpResponse
from shared.trades.settings import TradesSettings

JOURNAL_PATH = "/journal"
_DIR = Path(__file__).resolve().parent
_ASSETS = {
    "/journal/journal.js": ("journal.js", "text/javascript; charset=utf-8"),
    "/journal/journal.css": ("journal.css", "text/css; charset=utf-8"),
}


@cache
def _asset(name: str) -> bytes:
    return (_DIR / name).read_bytes()


def _headers(content_type: str, feed_url: str) -> dict[str, str]:
    # Scripts and styles of this origin only; the socket may go to the feed's origin.
    connect = "'self' ws: wss:" if not feed_url else f"'self' {feed_url}"
    return {
        "Content-Type": content_type,
        "Cache-Control": "no-store",
        "Content-Security-Policy": f"default-src 'none'; script-src 'self'; style-src 'self'; connect-src {connect};"
        " base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


def journal_response(path: str, settings: TradesSettings) -> HttpResponse | None:
    """The page or one of its assets for a GET of `path`; None when `path` is not the journal's."""
    if path.rstrip("/") == JOURNAL_PATH:
        page = _asset("journal.html").decode().replace("{{FEED_URL}}", html.escape(settings.feed_url, quote=True))
        return HttpResponse(200, page.encode(), _headers("text/html; charset=utf-8", settings.feed_url))
    if path in _ASSETS:
        name, content_type = _ASSETS[path]
        return HttpResponse(200, _asset(name), _headers(content_type, settings.feed_url))
    return None
