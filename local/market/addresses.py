"""Address formats of the simulated chains: EIP-55 checksummed EVM hex and Solana base58."""

from __future__ import annotations

import random

from Crypto.Hash import keccak  # pycryptodome: hashlib's sha3_256 is not Ethereum's Keccak-256

_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: i for i, char in enumerate(_BASE58_ALPHABET)}


def eip55(address: str) -> str:
    """The EIP-55 mixed-case checksum form of a 20-byte hex address (with or without 0x)."""
    hex_digits = address.lower().removeprefix("0x")
    digest = keccak.new(digest_bits=256, data=hex_digits.encode("ascii")).hexdigest()
    return "0x" + "".join(
        char.upper() if char in "abcdef" and digest[i] in "89abcdef" else char for i, char in enumerate(hex_digits)
    )


def base58_encode(raw: bytes) -> str:
    """Bitcoin/Solana base58 of `raw` (leading zero bytes become '1')."""
    number = int.from_bytes(raw, "big")
    chars = []
    while number:
        number, digit = divmod(number, 58)
        chars.append(_BASE58_ALPHABET[digit])
    leading_zeros = len(raw) - len(raw.lstrip(b"\0"))
    return "1" * leading_zeros + "".join(reversed(chars))


def base58_decode(text: str) -> bytes:
    """Inverse of `base58_encode`; raises ValueError on a character outside the alphabet."""
    number = 0
    for char in text:
        try:
            number = number * 58 + _BASE58_INDEX[char]
        except KeyError:
            raise ValueError(f"{char!r} is not a base58 character") from None
    leading_ones = len(text) - len(text.lstrip("1"))
    body = number.to_bytes((number.bit_length() + 7) // 8, "big") if number else b""
    return b"\0" * leading_ones + body


def random_solana_address(rng: random.Random, suffix: str = "") -> str:
    """A fresh 32-byte base58 public key; with `suffix` (e.g. 'pump') a vanity key ending in it."""
    while True:
        text = base58_encode(rng.randbytes(32))
        if suffix:
            text = text[: -len(suffix)] + suffix
        # A vanity tail can push the value past 32 bytes, or a short encoding can lose one: redraw.
        if len(text) >= 43 and len(base58_decode(text)) == 32:
            return text
