"""`make up`'s bearer-token key of the trades API: made once per checkout, private, reused."""

from __future__ import annotations

import stat
from pathlib import Path

from local.stack import local_trades_token_key
from shared.trades.settings import MIN_TOKEN_KEY_BYTES


def test_the_local_key_is_made_once_private_and_long_enough(tmp_path: Path) -> None:
    key = local_trades_token_key(tmp_path / ".local")
    path = tmp_path / ".local" / "trades-token-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(key.encode()) >= MIN_TOKEN_KEY_BYTES
    assert local_trades_token_key(tmp_path / ".local") == key
