"""Receipt codes (DESIGN.md section 8).

A receipt is 128 random bits shown once to a signer, who later uses it to find
and withdraw their signature. Only its SHA-256 is stored and published, so the
database and the public log cannot be used to act as the signer.

Written form: RFC 4648 base32 (A-Z, 2-7) without padding, 26 characters
(130 bits; the last character carries 2 zero bits), in six groups of four and
a final group of two, joined by "-"::

    ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ

Base32 has no 0, 1, 8 or 9, and only one case, so it survives handwriting and
reading aloud; short groups of four are easy to keep one's place in when
copying. Parsing forgives what people do when copying: lower case, spaces,
missing or extra dashes, and the digits 0, 1, 8 written for O, I, B.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

from crypto.errors import InvalidReceipt

RECEIPT_BYTES = 16
RECEIPT_CHARS = 26
RECEIPT_DIGEST_BYTES = 32
GROUP_CHARS = 4

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_CONFUSABLES = str.maketrans({"0": "O", "1": "I", "8": "B"})
# Separators people or word processors put between groups; all ignored.
_SEPARATORS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2212")
# Generous bound on raw input, checked before any work on it.
_MAX_INPUT_CHARS = 100


def format_receipt(raw: bytes) -> str:
    """Return the written form of a 16-byte receipt (see module docstring).

    Raises ``ValueError`` unless ``raw`` is exactly 16 bytes.
    """
    if len(raw) != RECEIPT_BYTES:
        raise ValueError(f"receipt is {len(raw)} bytes, want {RECEIPT_BYTES}")
    text = base64.b32encode(raw).decode("ascii").rstrip("=")
    return "-".join(text[i : i + GROUP_CHARS] for i in range(0, len(text), GROUP_CHARS))


def issue_receipt() -> tuple[str, bytes]:
    """Return a fresh receipt (16 bytes from the OS CSPRNG) in written form, and its digest (what is stored)."""
    raw = secrets.token_bytes(RECEIPT_BYTES)
    return format_receipt(raw), receipt_digest(raw)


def new_receipt() -> str:
    """Return a fresh receipt in written form."""
    return issue_receipt()[0]


def parse_receipt(text: str) -> bytes:
    """Return the 16 bytes a written receipt stands for.

    Ignores case, whitespace and dashes; reads 0, 1, 8 as O, I, B. Raises
    ``InvalidReceipt`` (whose message never repeats the input) for any other
    character, a length other than 26 characters, or non-zero padding bits
    in the last character (so each receipt has exactly one written form).
    """
    if len(text) > _MAX_INPUT_CHARS:
        raise InvalidReceipt("That is too long to be a receipt code.")
    compact = "".join(c for c in text if not c.isspace() and c not in _SEPARATORS)
    # ASCII check before upper(): str.upper maps some non-ASCII letters
    # (dotless i, long s) onto A-Z.
    if not compact.isascii():
        raise InvalidReceipt(
            "A receipt code contains only the letters A-Z and the digits 2-7."
        )
    compact = compact.upper().translate(_CONFUSABLES)
    if any(c not in _ALPHABET for c in compact):
        raise InvalidReceipt(
            "A receipt code contains only the letters A-Z and the digits 2-7."
        )
    if len(compact) != RECEIPT_CHARS:
        raise InvalidReceipt(
            f"A receipt code has {RECEIPT_CHARS} letters and digits; this has {len(compact)}. "
            "Please check it was copied completely."
        )
    if _ALPHABET.index(compact[-1]) & 0b11:
        raise InvalidReceipt(
            "That is not a valid receipt code; please check the last group."
        )
    return base64.b32decode(compact + "=" * 6)


def receipt_digest(raw: bytes) -> bytes:
    """Return SHA-256 of the 16 raw receipt bytes (32 bytes): what is stored and published.

    Raises ``ValueError`` unless ``raw`` is exactly 16 bytes.
    """
    if len(raw) != RECEIPT_BYTES:
        raise ValueError(f"receipt is {len(raw)} bytes, want {RECEIPT_BYTES}")
    return hashlib.sha256(raw).digest()
