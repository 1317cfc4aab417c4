"""The receipt code shown after a redirect (Post/Redirect/Get), never in a URL or a cookie.

After a signature counts, the page that shows its receipt code is reached by a
redirect, so Back or reload asks for that page again instead of sending the
form again (which made a second, useless code). The code waits for that page
sealed with AES-256-GCM under a fresh random key: the database keeps only the
sealed bytes, found by the key's SHA-256, for ``FLASH_SECONDS``; the key goes
in the signer's session cookie, which alone holds no code. The database alone
cannot read the code, and after a few minutes nothing can.
"""

import base64
import hashlib
import json
import os
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from flask import session

from .db import database
from .models import ReceiptFlash

FLASH_SECONDS = 600
SESSION_KEY = "receipt_flash"
NONCE_BYTES = 12


def _now(services):
    # Naive UTC, as every DateTimeField here holds (PostgreSQL's timestamp has no zone).
    return services.clock().replace(tzinfo=None)


def _handle(key):
    return hashlib.sha256(key).hexdigest()


def _aad(petition):
    # Bound to the petition, so one petition's page never shows another's code.
    return f"countersign receipt flash v1 {petition.id}".encode()


def keep(services, petition, receipt, kind):
    """Seal ``receipt`` for the next page this browser asks for; ``kind`` is "signed" or "confirmed"."""
    key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(NONCE_BYTES)
    payload = json.dumps({"receipt": receipt, "kind": kind}).encode()
    sealed = nonce + AESGCM(key).encrypt(nonce, payload, _aad(petition))
    now = _now(services)
    with database.atomic():
        ReceiptFlash.delete().where(ReceiptFlash.expires_at <= now).execute()
        ReceiptFlash.create(handle=_handle(key), sealed=sealed, expires_at=now + timedelta(seconds=FLASH_SECONDS))
    forget_key()
    session[SESSION_KEY] = base64.urlsafe_b64encode(key).decode()


def _key():
    value = session.get(SESSION_KEY)
    if not isinstance(value, str):
        return None
    try:
        key = base64.urlsafe_b64decode(value.encode())
    except ValueError:
        return None
    return key if len(key) == 32 else None


def shown(services, petition):
    """``(receipt, kind)`` kept by this browser for ``petition``, or None once gone or expired."""
    key = _key()
    if key is None:
        return None
    row = ReceiptFlash.get_or_none(ReceiptFlash.handle == _handle(key))
    if row is None or row.expires_at <= _now(services):
        return None
    sealed = bytes(row.sealed)
    try:
        payload = json.loads(AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _aad(petition)))
    except InvalidTag:
        return None
    return payload["receipt"], payload["kind"]


def forget_key():
    """Delete what this browser kept, and the key from its cookie."""
    key = _key()
    if key is not None:
        ReceiptFlash.delete().where(ReceiptFlash.handle == _handle(key)).execute()
    session.pop(SESSION_KEY, None)
