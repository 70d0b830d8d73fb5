"""Opening a trade-history CSV: delimiter, BOM, quoting, row numbers, where reading stops."""

from __future__ import annotations

import pytest

from shared.trades.csv_import import CsvRow, open_csv
from shared.trades.errors import TradeRejected


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_the_delimiter_is_the_one_that_splits_the_header(delimiter: str) -> None:
    header = delimiter.join(["time", "symbol", "side", "price", "qty"])
    row = delimiter.join(["2026-01-01T00:00:00Z", "BTCUSDT", "BUY", "1.5", "2"])
    csv_file = open_csv(f"\ufeff{header}\n{row}\n".encode())
    assert csv_file.delimiter == delimiter
    assert list(csv_file.rows()) == [CsvRow(2, ["2026-01-01T00:00:00Z", "BTCUSDT", "BUY", "1.5", "2"])]


def test_quoted_fields_blank_lines_and_row_numbers() -> None:
    text = 'time,symbol,side,price,qty,notes\n\n2026-01-01T00:00:00Z,BTCUSDT,BUY,1,1,"a, ""b""\nc"\n2026-01-01T00:00:01Z,BTCUSDT,SELL,1,1,\n'
    rows = list(open_csv(text.encode()).rows())
    assert rows[0] == CsvRow(3, ["2026-01-01T00:00:00Z", "BTCUSDT", "BUY", "1", "1", 'a, "b"\nc'])
    assert isinstance(rows[1], CsvRow) and rows[1].number == 5  # the quoted note spans lines 3 and 4


def test_an_unclosed_quote_stops_reading_and_says_where() -> None:
    rows = list(open_csv(b'time,symbol,side,price,qty\n2026-01-01T00:00:00Z,BTCUSDT,BUY,"1,1\n').rows())
    assert isinstance(rows[-1], TradeRejected) and "reading stopped" in rows[-1].detail


@pytest.mark.parametrize(
    "data,reason", [(b"\xff\xfe", "UTF-8"), (b"", "empty"), (b"a\x00b", "NUL"), (b"x,y\n", "no column")]
)
def test_files_that_are_no_trade_history_are_refused(data: bytes, reason: str) -> None:
    with pytest.raises(TradeRejected, match=reason):
        open_csv(data)
