"""Helpers for batch endpoints: chunking and address lists inside a URL path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from urllib.parse import quote


def unique(items: Iterable[str]) -> list[str]:
    """Items without exact duplicates, first occurrence kept (no case folding: Solana is case-sensitive)."""
    return list(dict.fromkeys(items))


def chunks(items: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most `size` items."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {size}")
    for start in range(0, len(items), size):
        yield items[start : start + size]


def path_segment(value: str, what: str) -> str:
    """`value` percent-encoded as one URL path segment; refuses empty or space-padded values."""
    if not isinstance(value, str) or value in ("", ".", "..") or value != value.strip():
        raise ValueError(f"{what} must be a non-empty string without surrounding spaces, got {value!r}")
    return quote(value, safe="")


def address_list_segment(addresses: Sequence[str]) -> str:
    """Addresses joined by commas as one path segment (the APIs' batch syntax)."""
    for address in addresses:
        if not isinstance(address, str) or "," in address:
            raise ValueError(f"invalid token address {address!r}: must be a string without commas")
    return ",".join(path_segment(a, "token address") for a in addresses)
