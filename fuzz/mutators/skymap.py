"""Mutations of an embedded sky map: the base64 text of a multi-order FITS file.

Bad base64 (truncation, foreign characters, whitespace, padding, the url-safe
alphabet), flipped characters (anywhere, or in the FITS headers), gzip (intact or
damaged), one FITS header card changed or blanked, bytes that are no FITS file.
"""

from __future__ import annotations

import base64
import gzip
import random

from fuzz.mutators.common import position, weighted


def _fits_card_edit(rng: random.Random, fits: bytes) -> bytes:
    """Damage one card of the FITS headers at the start of a (decoded) sky map."""
    head = bytearray(fits[: 2880 * 4])
    cards = [i for i in range(0, len(head) - 79, 80) if head[i : i + 8].strip()]
    if not cards:
        return fits
    keywords = [b"NAXIS2", b"NAXIS1", b"TFIELDS", b"TFORM1", b"TFORM2", b"TTYPE1",
                b"ORDERING", b"INDXSCHM", b"NSIDE", b"MOCORDER", b"PIXTYPE", b"BITPIX",
                b"PCOUNT", b"XTENSION", b"END", b"TUNIT2", b"COORDSYS"]
    keyword = rng.choice(keywords)
    matches = [i for i in cards if head[i : i + 8].rstrip() == keyword]
    at = rng.choice(matches) if matches else rng.choice(cards)
    value = rng.choice([b"0", b"-1", b"999999999", b"1E300", b"'XYZ'", b"T", b"F", b"", b"'RING'",
                        b"'NESTED'", b"'NUNIQ'", b"'1K'", b"'1D'", b"'1000000000D'", b"30",
                        b"-32", b"'BINTABLE'", b"NaN"])
    card = bytes((head[at : at + 8] + b"= " + value.rjust(20)).ljust(80)[:80])
    if rng.random() < 0.15:
        card = b" " * 80  # blank the card (END gone when it is the one chosen)
    head[at : at + 80] = card
    return bytes(head) + fits[len(head) :]


def mutate_map(rng: random.Random, text: str) -> tuple[str, str]:
    """One mutation of a base64 sky map string; returns (new text, op name)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    op = weighted(rng, [("truncate", 12), ("truncate4", 8), ("badchar", 10),
                        ("whitespace", 5), ("flip", 18), ("flip_header", 14),
                        ("padding", 6), ("urlsafe", 4), ("gzip", 6), ("gzip_damaged", 4),
                        ("fits_card", 16), ("not_fits", 6), ("empty", 3)])
    size = len(text)
    if op == "truncate":
        return text[: rng.randrange(size)], op
    if op == "truncate4":
        return text[: 4 * rng.randrange(max(1, size // 4))], op
    if op == "badchar":
        at = rng.randrange(size)
        return text[:at] + rng.choice("!*-_~\u00e9%\u0000=.") + text[at:], op
    if op == "whitespace":
        at = rng.randrange(size)
        return text[:at] + rng.choice(("\n", " ", "\t", "\r\n")) + text[at:], op
    if op in ("flip", "flip_header"):
        chars = list(text)
        for _ in range(rng.choice((1, 1, 2, 8))):
            at = rng.randrange(min(size, 8000)) if op == "flip_header" else rng.randrange(size)
            chars[at] = rng.choice(alphabet)
        return "".join(chars), op
    if op == "padding":
        stripped = text.rstrip("=")
        middle = text[: size // 2] + "=" + text[size // 2 :]
        return rng.choice((stripped, text + "==", middle, stripped + "=")), op
    if op == "urlsafe":
        return text.replace("+", "-").replace("/", "_"), op
    try:
        raw = base64.b64decode(text, validate=False)
    except ValueError:
        raw = b""
    if op in ("gzip", "gzip_damaged"):
        packed = bytearray(gzip.compress(raw, compresslevel=1, mtime=0))
        if op == "gzip_damaged" and packed:
            if rng.random() < 0.5:
                del packed[-rng.randint(1, 8) :]
            else:
                packed[position(rng, len(packed), head=64, tail=8)] ^= 0xFF
        return base64.b64encode(bytes(packed)).decode(), op
    if op == "fits_card":
        return base64.b64encode(_fits_card_edit(rng, raw)).decode(), op
    if op == "not_fits":
        blob = rng.choice((b"SIMPLE  =" + rng.randbytes(2871),
                           b"SIMPLE  =                    T" + bytes(2850) + rng.randbytes(2880),
                           rng.randbytes(2880), b"\x1f\x8b" + rng.randbytes(100)))
        return base64.b64encode(blob).decode(), op
    return rng.choice(("", "=", "====", "AAAA")), op
