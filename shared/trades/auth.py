"""Who is calling: a bearer token (an HS256 JWT signed with the configured key) whose subject is the user id.

PyJWT checks the signature with the one algorithm configured (never `alg` from the token, so
neither `none` nor a key-confusion trick is accepted), the expiry, the audience and, when
configured, the issuer. The key and the token are never logged nor echoed in an answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import jwt

from shared.trades.contracts import USER_ID_TEXT
from shared.trades.settings import MIN_TOKEN_KEY_BYTES, TradesSettings

ALGORITHM = "HS256"
_USER_ID = re.compile(USER_ID_TEXT)


class Unauthenticated(Exception):
    """401: no usable bearer token. `reason` is safe to show (it never quotes the token)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, in any case."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def authenticated_user(headers: Mapping[str, str], settings: TradesSettings) -> str:
    """The user id of the request's bearer token; `Unauthenticated` saying why not."""
    key = settings.token_key.get_secret_value()
    if len(key.encode()) < MIN_TOKEN_KEY_BYTES:
        raise Unauthenticated("the trades API has no token key configured (TRADES_TOKEN_KEY)")
    value = header(headers, "Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("send Authorization: Bearer <token>")
    try:
        claims = jwt.decode(
            token.strip(),
            key,
            algorithms=[ALGORITHM],
            audience=settings.token_audience,
            issuer=settings.token_issuer or None,
            leeway=settings.token_leeway_seconds,
            options={"require": ["exp", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthenticated("the token has expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthenticated(f"invalid token: {type(exc).__name__}") from None
    subject = claims.get("sub")
    if not isinstance(subject, str) or not _USER_ID.fullmatch(subject):
        raise Unauthenticated("the token's subject is no user id")
    return subject


def issue_token(
    settings: TradesSettings, user_id: str, *, lifetime_seconds: int = 3600, now: float | None = None
) -> str:
    """A token for `user_id` (local runs, tests and operators; production tokens come from the login service)."""
    import time

    issued = int(now if now is not None else time.time())
    claims = {"sub": user_id, "aud": settings.token_audience, "iat": issued, "exp": issued + lifetime_seconds}
    if settings.token_issuer:
        claims["iss"] = settings.token_issuer
    return jwt.encode(claims, settings.token_key.get_secret_value(), algorithm=ALGORITHM)
