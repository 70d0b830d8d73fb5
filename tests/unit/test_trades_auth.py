"""Bearer tokens of the trades API: HS256 only, expiry, audience, issuer, subject = user id."""

from __future__ import annotations

import time

import jwt
import pytest
from pydantic import SecretStr

from shared.trades.auth import Unauthenticated, authenticated_user, issue_token
from shared.trades.settings import TradesSettings

KEY = "k" * 40
SETTINGS = TradesSettings(token_key=SecretStr(KEY), token_issuer="login")
# Parameters are built at collection, maybe many minutes before the test runs (the whole suite):
# a token meant to fail for another reason must not expire first.
FAR_FUTURE = 10**7


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_token_of_ours_names_its_user() -> None:
    assert authenticated_user(bearer(issue_token(SETTINGS, "alice")), SETTINGS) == "alice"


@pytest.mark.parametrize(
    "headers,reason",
    [
        ({}, "Bearer"),
        ({"Authorization": "Basic YWxpY2U6eA=="}, "Bearer"),
        (bearer("not.a.token"), "invalid token"),
        (
            bearer(
                jwt.encode(
                    {"sub": "alice", "aud": "trades-api", "exp": time.time() + FAR_FUTURE, "iss": "login"}, "x" * 40
                )
            ),
            "invalid token",
        ),
        (
            bearer(
                jwt.encode(
                    {"sub": "alice", "aud": "trades-api", "exp": time.time() + FAR_FUTURE, "iss": "login"},
                    "",
                    algorithm="none",
                )
            ),
            "invalid token",
        ),
        (
            bearer(jwt.encode({"sub": "alice", "aud": "other", "exp": time.time() + FAR_FUTURE, "iss": "login"}, KEY)),
            "invalid token",
        ),
        (
            bearer(
                jwt.encode({"sub": "alice", "aud": "trades-api", "exp": time.time() + FAR_FUTURE, "iss": "evil"}, KEY)
            ),
            "invalid token",
        ),
        (bearer(jwt.encode({"sub": "alice", "aud": "trades-api", "iss": "login"}, KEY)), "invalid token"),  # no exp
        (bearer(issue_token(SETTINGS, "alice", now=time.time() - 7200)), "expired"),
        (
            bearer(
                jwt.encode({"sub": "a b", "aud": "trades-api", "exp": time.time() + FAR_FUTURE, "iss": "login"}, KEY)
            ),
            "subject",
        ),
    ],
)
def test_unusable_tokens_are_refused_without_quoting_them(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason) as caught:
        authenticated_user(headers, SETTINGS)
    token = headers.get("authorization", "")[7:]
    assert not token or token not in caught.value.reason


def test_without_a_configured_key_nobody_is_authenticated() -> None:
    with pytest.raises(Unauthenticated, match="TRADES_TOKEN_KEY"):
        authenticated_user(bearer(issue_token(SETTINGS, "alice")), TradesSettings())
