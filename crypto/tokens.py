"""Confirmation tokens: the secret in the link mailed to a signer (DESIGN §6).

A token is 32 bytes from the OS CSPRNG, written as 43 base64url characters
without padding (``secrets.token_urlsafe(32)``). Only its SHA-256 is stored,
so a copy of the database cannot confirm anybody's pending signature.

Each token has exactly one written form: parsing refuses anything but 43
base64url characters whose last one carries zero padding bits, before any
look-up is made with it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets

from crypto.errors import InvalidToken

TOKEN_BYTES = 32
TOKEN_CHARS = 43
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def new_token() -> tuple[str, bytes]:
    """A fresh token and the digest stored for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token: str) -> bytes:
    """SHA-256 of the token's 32 bytes: all the database ever holds of it.

    Raises InvalidToken for anything not in the token's one written form.
    """
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise InvalidToken()
    raw = base64.urlsafe_b64decode(token + "=")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise InvalidToken()
    return hashlib.sha256(raw).digest()
