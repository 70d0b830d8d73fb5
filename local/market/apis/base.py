"""What every simulated API shares: request/response types, routing, error bodies."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from local.market import wire
from local.market.clock import SimClock
from local.market.universe import Universe

JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=UTF-8"


@dataclass
class Request:
    """One upstream request, its path relative to the API prefix."""

    method: str
    path: str
    raw_query: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(self.raw_query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """The first value of query parameter `name`, or None."""
        values = self.query.get(name)
        return values[0] if values else None

    def flag(self, name: str, default: bool) -> bool:
        """A boolean query parameter ('true'/'false'), `default` when absent."""
        value = self.param(name)
        return default if value is None else value.strip().lower() == "true"


@dataclass
class Response:
    """A response ready for the wire."""

    status: int
    body: bytes
    content_type: str = JSON
    headers: list[tuple[str, str]] = field(default_factory=list)


def json_response(body: Any, status: int = 200, headers: list[tuple[str, str]] | None = None) -> Response:
    """A JSON response built with wire.dumps (Decimal stays exact)."""
    return Response(status, wire.dumps(body), JSON, headers or [])


class ApiError(Exception):
    """Raised by a handler to answer with an error response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


Handler = Callable[..., Response]


@dataclass(frozen=True)
class Route:
    """GET /template with {placeholders}, dispatched to a handler taking them as keyword arguments."""

    method: str
    template: str
    handler: Handler
    pattern: re.Pattern[str]


def _compile(template: str) -> re.Pattern[str]:
    regex = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template))
    return re.compile(f"^{regex}$")


class Api:
    """Base of one simulated upstream API mounted under /<name>."""

    name = ""

    def __init__(self, universe: Universe, clock: SimClock) -> None:
        self.universe = universe
        self.clock = clock
        self.routes: list[Route] = []

    def route(self, method: str, template: str, handler: Handler) -> None:
        self.routes.append(Route(method, template, handler, _compile(template)))

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The route serving (method, path) and its path parameters; None if the API has no such path."""
        for candidate in self.routes:
            found = candidate.pattern.match(path)
            if found and candidate.method == method:
                return candidate, found.groupdict()
        return None

    def not_found(self, request: Request) -> Response:
        """Answer for a path this API does not have."""
        return json_response({"error": f"{self.name} has no route {request.method} {request.path}"}, 404)

    def error_response(self, status: int, retry_after: int | None) -> Response:
        """The API's own error body for an HTTP status (used by fault injection)."""
        raise NotImplementedError

    def finalize(self, request: Request, route: Route | None, response: Response) -> Response:
        """Hook run on every response of this API (Binance adds its used-weight header)."""
        return response


def retry_after_header(retry_after: int | None, name: str = "Retry-After") -> list[tuple[str, str]]:
    return [] if retry_after is None else [(name, str(retry_after))]


def html_error_page(status: int, reason: str) -> Response:
    """The HTML page a CDN/gateway sends instead of JSON (502s, and some CoinGecko 429s)."""
    page = (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>cloudflare</center>\r\n</body>\r\n</html>\r\n"
    )
    return Response(status, page.encode(), HTML)


def split_list(value: str | None) -> list[str]:
    """Comma-separated values, blanks dropped ('a, b,,c' -> ['a', 'b', 'c'])."""
    if not value:
        return []
    return [item.strip() for item in value.split(",") if item.strip()]
