"""The decoding row compares readers on the same bodies: each must price the same tokens."""

from __future__ import annotations

from pathlib import Path

from bench.decoding import READERS, RecordedAnswer, measure
from shared.crawler.store import KnownToken

FIXTURE = (
    Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "upstream" / "dexscreener.tokens_v1.solana_wsol.json"
)
WSOL = "So11111111111111111111111111111111111111112"


def test_every_reader_prices_the_recorded_token_and_is_timed():
    token = KnownToken(f"solana:{WSOL}", "SOL", "solana", WSOL, None, {})
    answer = RecordedAnswer("solana", [(token, WSOL)], FIXTURE.read_bytes())
    figures = measure([answer], repeats=2)
    assert figures.tokens == 1 and figures.answers == 1 and figures.body_bytes == len(answer.body)
    assert figures.priced == {name: 1 for name in READERS}
    assert all(seconds >= 0 for seconds in figures.per_thousand.values())
