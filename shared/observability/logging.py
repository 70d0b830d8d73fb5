"""Logging on stdout: one JSON object per line, or short readable lines in a terminal.

`LOG_FORMAT` chooses (`configure_logging(log_format=...)`): `json` for files, pipes and the
cluster; `console` for a person at a terminal (`21:00:05.123 INFO  price  job … succeeded …
job=top100-price:…`, coloured on a terminal unless NO_COLOR, or with FORCE_COLOR); `auto`, the
default, is console only when both stdout and stderr are terminals.

JSON lines:

Every line has the same keys first — `timestamp` (UTC, ms), `level`, `function`, `logger`,
`event_id`, `job_id`, `trace_id` (null when unknown) and `message` — then the record's
`extra={...}` fields. Request-scoped fields are attached with `log_context(...)` and
reach every line written inside the block, from any module.

No secret reaches a line: fields named like credentials are masked; in the message,
exception text and string fields, URL passwords (`postgresql://user:***@host`),
credential query/key-value parameters (`api_key=***`), `Bearer` tokens and every
value registered with `register_secret` (the configured API keys and database password,
see `configure_logging`) are replaced by `***`. Note that "token" alone is not a
credential here: in this domain it is a crypto token (`token_type`, `failed_tokens`).
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

MASK = "***"
CONTEXT_KEYS = ("event_id", "job_id", "trace_id")

_context: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("log_context", default={})  # noqa: B039 - never mutated: log_context sets a new dict
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# Field or parameter names that hold credentials (compared without "-"/"_" and case).
_SECRET_NAMES = (
    "password",
    "passwd",
    "pwd",
    "secret",
    "clientsecret",
    "apikey",
    "xapikey",
    "accesskey",
    "secretkey",
    "privatekey",
    "authorization",
    "auth",
    "authtoken",
    "accesstoken",
    "refreshtoken",
    "bearertoken",
    "idtoken",
    "sessiontoken",
    "cookie",
    "setcookie",
    "signature",
    "credential",
    "credentials",
    "xcgdemoapikey",
    "xcgproapikey",
    "xmbxapikey",
)
_SECRET_SUFFIXES = ("password", "secret", "apikey", "accesskey", "privatekey", "authtoken", "accesstoken")

_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/?#@\s]*):(?P<password>[^@/?#\s]+)@")
_KEY_VALUE = re.compile(
    r"(?P<key>\b[\w-]*(?:password|passwd|secret|api[_-]?key|access[_-]?key|private[_-]?key|auth[_-]?token|"
    r"access[_-]?token|refresh[_-]?token|session[_-]?token|signature)\b[\"']?\s*[=:]\s*[\"']?)(?P<value>[^\s&,;\"'}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<scheme>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)

_secrets_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()


@contextmanager
def log_context(**fields: str | None) -> Iterator[None]:
    """Attach fields (event_id, job_id, trace_id, ...) to every log line written in this block."""
    merged = {**_context.get(), **{k: v for k, v in fields.items() if v}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, str]:
    """The fields attached by the enclosing `log_context` blocks."""
    return dict(_context.get())


def register_secret(*values: str | None) -> None:
    """Never print these values (API keys, passwords) in any log line, wherever they appear."""
    global _secrets
    fresh = {v for v in values if v and len(v) >= 4}  # masking "ab" everywhere would mangle lines
    if fresh:
        with _secrets_lock:
            _secrets = _secrets | fresh


def secrets_of(settings: Any) -> list[str]:
    """The secret values a `shared.config.Settings` holds: upstream API keys and the database password."""
    found: list[str] = []
    try:
        url = urlparse(settings.database_url)
        # A password equal to the user name (the local default crawler:crawler) is no secret, and
        # masking it would mangle every line naming the project; URL forms are masked regardless.
        if url.password and url.password != url.username:
            found.append(url.password)
    except (AttributeError, ValueError):
        pass
    for api in ("binance", "coingecko", "dexscreener", "geckoterminal", "goplus", "finnhub"):
        try:
            found.append(getattr(getattr(settings, api), "api_key", "") or "")
        except Exception:  # an unreadable sub-settings block has no key to hide
            continue
    return [s for s in found if s]


def redact(text: str) -> str:
    """`text` with credentials masked (URL passwords, key=value credentials, bearer tokens, registered secrets)."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
    text = _KEY_VALUE.sub(lambda m: m["key"] + MASK, text)
    text = _BEARER.sub(lambda m: m["scheme"] + MASK, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def is_secret_name(name: str) -> bool:
    """True for a field name that holds a credential (`api_key`, `password`, `Authorization`, ...)."""
    squashed = name.lower().replace("_", "").replace("-", "")
    return squashed in _SECRET_NAMES or squashed.endswith(_SECRET_SUFFIXES)


def _clean(key: str, value: Any) -> Any:
    if is_secret_name(key):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _clean(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean("", v) for v in value]
    return value


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (see the module docstring for its keys)."""

    def __init__(self, function: str = ""):
        super().__init__()
        self.function = function

    def format(self, record: logging.LogRecord) -> str:
        context = _context.get()
        line: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "function": self.function or record.name,
            "logger": record.name,
        }
        for key in CONTEXT_KEYS:  # from the enclosing log_context, else from the record's extra fields
            line[key] = _clean(key, context.get(key) or getattr(record, key, None))
        line["message"] = redact(record.getMessage())
        for key, value in context.items():
            if key not in line:
                line[key] = _clean(key, value)
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_") and key not in line:
                line[key] = _clean(key, value)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=lambda v: redact(str(v)), ensure_ascii=False)


class ConsoleFormatter(logging.Formatter):
    """Formats a record as one short line for a person: time (UTC), level, function, message, job id.

    The same masking as the JSON lines applies; an exception follows, indented.
    """

    LEVEL_COLORS = {"DEBUG": "2", "INFO": "32", "WARNING": "33", "ERROR": "1;31", "CRITICAL": "1;41"}

    def __init__(self, function: str = "", *, color: bool = False):
        super().__init__()
        self.function = function
        self.color = color

    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color and code else text

    def format(self, record: logging.LogRecord) -> str:
        context = _context.get()
        stamp = datetime.fromtimestamp(record.created, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
        level = self._paint(f"{record.levelname:<7}", self.LEVEL_COLORS.get(record.levelname, ""))
        parts = [self._paint(stamp, "2"), level, self.function or record.name, redact(record.getMessage())]
        job_id = context.get("job_id") or getattr(record, "job_id", None)
        if job_id and str(job_id) not in parts[-1]:  # most job lines name their job already
            parts.append(self._paint(f"job={redact(str(job_id))}", "2"))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + "\n".join("    " + row for row in redact(self.formatException(record.exc_info)).splitlines())
        return line


LOG_FORMATS = ("auto", "console", "json")


def console_wanted(log_format: str, stream: Any = None, stderr: Any = None) -> bool:
    """Whether `log_format` means readable lines: `console`, or `auto` with stdout and stderr both terminals."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    if log_format != "auto":
        return log_format == "console"
    return _is_tty(stream if stream is not None else sys.stdout) and _is_tty(
        stderr if stderr is not None else sys.stderr
    )


def color_wanted(stream: Any, environ: Mapping[str, str]) -> bool:
    """Colours on a terminal, or when FORCE_COLOR is set (`make up` passes its own terminal on); never with NO_COLOR."""
    if environ.get("NO_COLOR"):
        return False
    return bool(environ.get("FORCE_COLOR")) or _is_tty(stream)


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def make_formatter(
    function: str, log_format: str = "auto", *, stream: Any = None, environ: Mapping[str, str] | None = None
) -> logging.Formatter:
    """The formatter `log_format` (auto, console, json) chooses for lines written to `stream` (stdout)."""
    stream = stream if stream is not None else sys.stdout
    if console_wanted(log_format, stream):
        return ConsoleFormatter(function, color=color_wanted(stream, os.environ if environ is None else environ))
    return JsonFormatter(function)


def configure_logging(
    function: str, level: str = "INFO", *, secrets: Iterable[str] = (), log_format: str = "auto"
) -> None:
    """Route every logger to stdout (once per process) in `log_format`, and register `secrets` to mask."""
    register_secret(*secrets)
    root = logging.getLogger()
    if any(isinstance(h.formatter, (JsonFormatter, ConsoleFormatter)) for h in root.handlers):
        return
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(make_formatter(function, log_format, stream=sys.stdout))
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
