"""Sealing under a one-time key that only its holder keeps.

Used to keep a receipt code for one browser for a few minutes: the database
holds only ``seal``'s output, found by ``key_handle``; the key itself goes to
the browser. Neither side alone can read the code.

Layout of a sealed value: nonce (12 bytes) || AES-256-GCM ciphertext and tag.
The associated data binds it to its context (for example one petition).
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.errors import InvalidKey

KEY_BYTES = 32
NONCE_BYTES = 12


def new_key() -> bytes:
    return AESGCM.generate_key(bit_length=8 * KEY_BYTES)


def key_handle(key: bytes) -> str:
    """What the database files a sealed value under: SHA-256 of the key, hex (the key cannot be recovered)."""
    return hashlib.sha256(key).hexdigest()


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    """The plaintext, or InvalidKey for any failure (wrong key or context, altered, truncated)."""
    if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES:
        raise InvalidKey("the sealed value cannot be opened")
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise InvalidKey("the sealed value cannot be opened") from None
