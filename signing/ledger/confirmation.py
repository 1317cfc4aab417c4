"""Email confirmation: a submission with an email is ready to count once its mailed link is followed.

Each submission has its own token: a later submission (by the signer, or by
a stranger typing their address) never replaces the link, the display name
or anything else an earlier one holds. The mailbox owner decides which to
confirm; the confirm page shows what they would confirm.
"""

from crypto.errors import InvalidToken
from crypto.receipts import issue_receipt
from crypto.tokens import token_digest

from ..models import Inbox, Outbox
from .errors import ExpiredToken, MalformedToken, UnknownToken
from .petitions import require_open
from .publishing import maybe_publish


def _digest_of(token):
    try:
        return token_digest(token)
    except InvalidToken:
        raise MalformedToken() from None


def pending_signature(services, petition, token):
    """The submission ``token`` confirms, for the page with the button; changes nothing.

    Raises MalformedToken, PetitionNotOpen, UnknownToken or ExpiredToken.
    """
    digest = _digest_of(token)
    require_open(petition)
    return _pending_by_digest(services, petition, digest)


def _pending_by_digest(services, petition, digest):
    row = Inbox.get_or_none(
        (Inbox.petition == petition.id) & (Inbox.token_hash == digest) & (Inbox.ready == False)  # noqa: E712
    )
    if row is None:
        raise UnknownToken()
    if row.token_expires is None or row.token_expires <= services.naive_now():
        raise ExpiredToken()
    return row


def confirm_signature(services, petition, token):
    """Make the submission ``token`` stands for ready to count; return its receipt code, shown once.

    It counts from the next batch, unless this person already counts: then
    the receipt leads to that signature (settlement.py), which only the
    mailbox owner can learn. A token works once.
    """
    digest = _digest_of(token)
    require_open(petition)
    maybe_publish(services, petition)  # before this request's own write, never with it
    row = _pending_by_digest(services, petition, digest)
    receipt, receipt_hash = issue_receipt()
    confirmed = (
        Inbox.update(ready=True, receipt_hash=receipt_hash, token_hash=None, token_expires=None)
        .where((Inbox.petition == petition.id) & (Inbox.token_hash == digest) & (Inbox.ready == False))  # noqa: E712
        .execute()
    )
    if confirmed != 1:
        raise UnknownToken()  # confirmed by a request at the same moment
    # The resend limit has done its job for this address: its owner is here, and
    # may hear at once about what they submit next ("already signed").
    Outbox.delete().where(
        (Outbox.petition == petition.id) & (Outbox.email_tag == row.email_tag) & Outbox.sealed.is_null()
    ).execute()
    return receipt


def expire_pending(services):
    """Delete submissions whose link has expired, in every petition; return how many.

    Also forgets when mail last went to an address, once the resend limit no
    longer needs it.
    """
    now = services.naive_now()
    Outbox.delete().where(Outbox.sealed.is_null() & (Outbox.sent_at <= now - services.resend_interval)).execute()
    return (
        Inbox.delete()
        .where(
            (Inbox.ready == False)  # noqa: E712
            & (Inbox.settled == False)  # noqa: E712
            & (Inbox.token_expires.is_null() | (Inbox.token_expires <= now))
        )
        .execute()
    )
