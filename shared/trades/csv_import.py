"""Reading a trade-history CSV file into rows (pure): each row read, or rejected with its number and reason.

The file is UTF-8 (a BOM is ignored); its delimiter is the one of `,` `;` tab `|` that splits the
header into the most cells; quoted fields follow RFC 4180. The header maps columns to fields
(`normalize.csv_column_map`); a header that names no required column rejects the whole file.
A row's number is the line of the file it starts on (the header is line 1; a quoted field may
span lines). An empty
line is skipped; a row the csv module cannot read (an unclosed quote) is rejected, and reading
stops there, saying so: nothing after it can be trusted to be split right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from shared.trades.errors import TradeRejected
from shared.trades.normalize import csv_column_map

DELIMITERS = (",", ";", "\t", "|")


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One data row: its number in the file and its cells."""

    number: int
    cells: list[str]


@dataclass(frozen=True, slots=True)
class CsvFile:
    """A decoded file: its delimiter, its column map and its text (rows are read lazily)."""

    delimiter: str
    header: list[str]
    columns: dict[str, int]
    text: str

    def rows(self) -> Iterator[CsvRow | TradeRejected]:
        """Every data row in order, or the error that stopped reading (a `TradeRejected` naming the row)."""
        reader = csv.reader(io.StringIO(self.text, newline=""), delimiter=self.delimiter, strict=True)
        try:
            next(reader)  # the header
            start = reader.line_num + 1
            for cells in reader:
                if any(cell.strip() for cell in cells):
                    yield CsvRow(start, cells)
                start = reader.line_num + 1
        except csv.Error as exc:
            yield TradeRejected(f"row {reader.line_num + 1}", f"unreadable CSV ({exc}); reading stopped here")


def open_csv(data: bytes) -> CsvFile:
    """The file's delimiter and columns; `TradeRejected` when it is no trade-history CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TradeRejected("file", f"is not UTF-8 (byte {exc.start}); save it as UTF-8 CSV") from None
    if "\x00" in text:
        raise TradeRejected("file", "contains NUL characters: not a CSV text file")
    first = text.splitlines()[0] if text.strip() else ""
    if not first.strip():
        raise TradeRejected("file", "is empty or has no header line")
    delimiter = max(DELIMITERS, key=lambda d: len(first.split(d)))
    try:
        header = next(csv.reader(io.StringIO(first), delimiter=delimiter, strict=True))
    except csv.Error as exc:
        raise TradeRejected("header", f"unreadable ({exc})") from None
    return CsvFile(delimiter, header, csv_column_map(header), text)
