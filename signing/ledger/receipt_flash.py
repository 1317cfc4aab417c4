"""The receipt code shown after a redirect (Post/Redirect/Get), never in a URL.

After a signature counts, the page that shows its receipt code is reached by a
redirect, so Back or reload asks for that page again instead of sending the
form again (which made a second, useless code). The code waits for that page
sealed under a fresh one-time key (crypto/onetime.py): the database keeps only
the sealed bytes, filed by the key's SHA-256, for ``RECEIPT_FLASH_SECONDS``;
the key goes to the signer's browser (web/flash_cookie.py). The database
alone cannot read the code, and after a few minutes nothing can.

Expired rows are unreadable at once (``kept_receipt`` checks the time) and
deleted within a minute more: by the background thread, and by the next
signature in this process, at most once a minute so that signing does not
pay for a DELETE every time.
"""

import json
from datetime import timedelta

from crypto import onetime
from crypto.errors import InvalidKey

from ..db import insert_row
from ..models import ReceiptFlash

RECEIPT_FLASH_SECONDS = 600
SWEEP_SECONDS = 60

_next_sweep = {"at": None}


def _context(petition):
    # Bound to the petition, so one petition's page never shows another's code.
    return f"countersign receipt flash v1 {petition.id}".encode()


def keep_receipt(services, petition, receipt, kind):
    """Seal ``receipt`` (``kind`` "signed" or "confirmed"); return the one-time key for the browser."""
    key = onetime.new_key()
    sealed = onetime.seal(key, json.dumps({"receipt": receipt, "kind": kind}).encode(), _context(petition))
    now = services.naive_now()
    due = _next_sweep["at"]
    if due is None or now >= due or now < due - timedelta(seconds=SWEEP_SECONDS):  # the last, or a clock set back
        sweep_expired(services)
    insert_row(
        ReceiptFlash,
        handle=onetime.key_handle(key),
        sealed=sealed,
        expires_at=now + timedelta(seconds=RECEIPT_FLASH_SECONDS),
    )
    return key


def sweep_expired(services):
    """Delete every expired record (no one could open them any more)."""
    now = services.naive_now()
    ReceiptFlash.delete().where(ReceiptFlash.expires_at <= now).execute()
    _next_sweep["at"] = now + timedelta(seconds=SWEEP_SECONDS)


def kept_receipt(services, petition, key):
    """``(receipt, kind)`` sealed under ``key`` for ``petition``, or None once gone or expired."""
    row = ReceiptFlash.get_or_none(ReceiptFlash.handle == onetime.key_handle(key))
    if row is None or row.expires_at <= services.naive_now():
        return None
    try:
        payload = json.loads(onetime.open_sealed(key, bytes(row.sealed), _context(petition)))
    except InvalidKey:
        return None
    return payload["receipt"], payload["kind"]


def forget_receipt(key):
    ReceiptFlash.delete().where(ReceiptFlash.handle == onetime.key_handle(key)).execute()
