"""The mail outbox: what to send, sealed at rest, claimed with a lease, retried with backoff.

A request only adds a row (online.py); a sender outside the request
(signing/background.py, `signing send-mail`) sends it. The recipient and the
link are sealed (AES-GCM under a key derived from the master key, bound to
the row's petition and email tag) and the sealed bytes are deleted as soon as
the message went or was given up on, so no address is ever at rest in the
clear and none stays sealed longer than needed.

Which message goes is decided here, at send time: "please confirm" with the
link, or "you have already signed" when the address already counts, and
nothing when mail went to the address less than the resend limit ago. Only
the mailbox's owner sees which; the request that caused it was the same.
"""

import json
import secrets
from dataclasses import dataclass
from datetime import timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from crypto.keys import derive_subkey

from ..models import COUNTED, Outbox, Signature

NONCE_BYTES = 12
MAX_ATTEMPTS = 8
FIRST_RETRY = timedelta(seconds=30)
LAST_RETRY = timedelta(hours=1)


def _key(services):
    return derive_subkey(services.keyring.master_key, "outbox")


def _context(petition_id, email_tag):
    return b"countersign-outbox/v1|" + str(petition_id).encode() + b"|" + bytes(email_tag)


def enqueue(services, petition, email_tag, inbox_id, payload):
    """Add one message to send; ``payload`` is a dict (recipient, links, language), sealed here."""
    nonce = secrets.token_bytes(NONCE_BYTES)
    plain = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    sealed = nonce + AESGCM(_key(services)).encrypt(nonce, plain, _context(petition.id, email_tag))
    Outbox.create(
        petition=petition.id, email_tag=email_tag, inbox=inbox_id, sealed=sealed, not_before=services.naive_now()
    )


@dataclass(frozen=True, repr=False)
class Claimed:
    row_id: int
    petition_id: int
    kind: str  # "confirm" or "already_signed"
    payload: dict

    def __repr__(self):
        return f"Claimed({self.row_id}, {self.kind})"


def _open(services, row):
    sealed = bytes(row.sealed)
    try:
        plain = AESGCM(_key(services)).decrypt(
            sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], _context(row.petition_id, row.email_tag)
        )
    except InvalidTag:
        return None
    return json.loads(plain)


def claim_next(services, lease):
    """The next message due, claimed for ``lease`` and decided; None when none is due.

    One at a time, so the resend limit sees the message sent just before. A
    sender killed mid-send holds its claim no longer than ``lease``.
    """
    while True:
        now = services.naive_now()
        row = (
            Outbox.select()
            .where(
                Outbox.sealed.is_null(False)
                & (Outbox.not_before <= now)
                & (Outbox.lease_until.is_null() | (Outbox.lease_until <= now))
            )
            .order_by(Outbox.not_before, Outbox.id)
            .first()
        )
        if row is None:
            return None
        taken = (
            Outbox.update(lease_until=now + lease, attempts=Outbox.attempts + 1)
            .where(
                (Outbox.id == row.id)
                & Outbox.sealed.is_null(False)
                & (Outbox.lease_until.is_null() | (Outbox.lease_until <= now))
            )
            .execute()
        )
        if taken == 1:
            item = _decide(services, row, now)
            if item is not None:
                return item
        # Taken by another sender, or nothing to send for it: look again.


def _decide(services, row, now):
    payload = _open(services, row)
    if payload is None:
        _forget(row.id)
        return None
    counted = Signature.select(Signature.id).where(
        (Signature.petition == row.petition_id) & (Signature.email_tag == row.email_tag) & (Signature.status == COUNTED)
    )
    kind = "already_signed" if counted.exists() else "confirm"
    if _recently_mailed(services, row, kind, now):
        _forget(row.id)
        return None
    return Claimed(row.id, row.petition_id, kind, payload)


def _recently_mailed(services, row, kind, now):
    """The resend limit: one message of a kind per address per interval (keeps anyone from flooding a mailbox)."""
    return (
        Outbox.select(Outbox.id)
        .where(
            (Outbox.petition == row.petition_id)
            & (Outbox.email_tag == row.email_tag)
            & (Outbox.id != row.id)
            & (Outbox.kind == kind)
            & (Outbox.sent_at > now - services.resend_interval)
        )
        .exists()
    )


def _forget(row_id):
    Outbox.delete().where(Outbox.id == row_id).execute()


def mark_sent(services, item):
    """The message went: drop the sealed address, keep when (for the resend limit)."""
    Outbox.update(sealed=None, sent_at=services.naive_now(), kind=item.kind, lease_until=None, inbox=None).where(
        Outbox.id == item.row_id
    ).execute()


def mark_failed(services, item):
    """Try again later, ever later; after MAX_ATTEMPTS give up and forget the address."""
    row = Outbox.get_or_none(Outbox.id == item.row_id)
    if row is None:
        return
    if row.attempts >= MAX_ATTEMPTS:
        _forget(row.id)
        return
    delay = min(LAST_RETRY, FIRST_RETRY * (2 ** (row.attempts - 1)))
    Outbox.update(not_before=services.naive_now() + delay, lease_until=None).where(Outbox.id == row.id).execute()


def waiting_count():
    return Outbox.select().where(Outbox.sealed.is_null(False)).count()
