"""Email confirmation: a signature with an email counts once its mailed link is followed."""

from peewee import IntegrityError

from crypto.errors import InvalidToken
from crypto.receipts import new_receipt, parse_receipt, receipt_digest
from crypto.tokens import new_token, token_digest

from ..db import database
from ..models import COUNTED, ONLINE, PENDING, WITHDRAWN, SealedContact, Signature
from .errors import ExpiredToken, MailError, MalformedToken, UnknownToken
from .petitions import require_open
from .publishing import maybe_publish, supersede_paper_of


def _digest_of(token):
    try:
        return token_digest(token)
    except InvalidToken:
        raise MalformedToken() from None


def request_confirmation(services, petition, address, submission):
    """Mail the owner of ``address`` what they need, keyed by the email tag only.

    - no live signature with this email tag: store a pending one (the hash of
      a fresh token, its expiry) and mail the confirmation link;
    - a pending one: mail a fresh link that replaces the old one (and the
      signer's latest details);
    - a counted one: mail "you have already signed", with no link that acts.

    For a pending or a counted one, nothing is sent if a mail about it went
    less than ``resend_interval`` ago. Both are limited alike on purpose: were
    only fresh links limited, a prober submitting an address twice would find
    the second answer slower (an SMTP conversation) exactly when the address
    had signed. The limit also keeps anyone from flooding a mailbox.

    The caller answers every case the same way. If sending fails, MailError
    propagates, whatever the case, and nothing this call did is left behind:
    the row it inserted is deleted, a pending row keeps its old link, and the
    limit does not start (nothing went out).
    """
    now = services.clock().replace(tzinfo=None)
    live = Signature.get_or_none(
        (Signature.petition == petition.id)
        & (Signature.email_tag == submission.email)
        & (Signature.status != WITHDRAWN)
    )
    if live is None:
        _start_pending(services, petition, now, address, submission)
    elif live.status == PENDING:
        _resend_pending(services, petition, now, live, address, submission)
    elif _claim_mail(services, now, live):
        try:
            services.mailer.send_already_signed(address, petition)
        except MailError:
            _release_mail(now, live)
            raise
    maybe_publish(services, petition)


def _start_pending(services, petition, now, address, submission):
    token, digest = new_token()
    try:
        with database.atomic():
            row = Signature.create(
                petition=petition.id,
                person_tag=submission.person,
                email_tag=submission.email,
                channel=ONLINE,
                status=PENDING,
                display_name=submission.display_name,
                district=submission.district,
                sealed_contact=submission.sealed_contact,
                day=now.date(),
                token_hash=digest,
                token_expires=now + services.confirm_ttl,
                token_sent_at=now,
            )
    except IntegrityError:
        return  # the same address submitted twice at once: the other request mails
    try:
        services.mailer.send_confirmation(address, petition, token, services.confirm_ttl)
    except MailError:
        Signature.delete().where(
            (Signature.id == row.id) & (Signature.status == PENDING) & (Signature.token_hash == digest)
        ).execute()
        raise


def _claim_mail(services, now, live):
    """Take the right to mail about ``live`` now, unless a mail went within the limit.

    One conditional UPDATE, so two requests at once mail only once.
    """
    return (
        Signature.update(token_sent_at=now)
        .where(
            (Signature.id == live.id)
            & (Signature.status == live.status)
            & (Signature.token_sent_at.is_null() | (Signature.token_sent_at <= now - services.resend_interval))
        )
        .execute()
    ) == 1


def _release_mail(now, live):
    """Nothing went out after all: put back when the last mail went."""
    Signature.update(token_sent_at=live.token_sent_at).where(
        (Signature.id == live.id) & (Signature.token_sent_at == now)
    ).execute()


def _resend_pending(services, petition, now, live, address, submission):
    if not _claim_mail(services, now, live):
        return
    token, digest = new_token()
    try:
        services.mailer.send_confirmation(address, petition, token, services.confirm_ttl)
    except MailError:
        _release_mail(now, live)  # and the old link still works
        raise
    # Only the newest link works, and it confirms what was sent with it.
    Signature.update(
        person_tag=submission.person,
        display_name=submission.display_name,
        district=submission.district,
        sealed_contact=submission.sealed_contact,
        token_hash=digest,
        token_expires=now + services.confirm_ttl,
    ).where((Signature.id == live.id) & (Signature.status == PENDING)).execute()


def pending_signature(services, petition, token):
    """The pending signature ``token`` confirms, for the page with the button; changes nothing.

    Raises MalformedToken, PetitionNotOpen, UnknownToken or ExpiredToken.
    """
    digest = _digest_of(token)
    require_open(petition)
    return _pending_by_digest(services, petition, digest)


def _pending_by_digest(services, petition, digest):
    signature = Signature.get_or_none(
        (Signature.petition == petition.id) & (Signature.token_hash == digest) & (Signature.status == PENDING)
    )
    if signature is None:
        raise UnknownToken()
    if signature.token_expires is None or signature.token_expires <= services.clock().replace(tzinfo=None):
        raise ExpiredToken()
    return signature


def confirm_signature(services, petition, token):
    """Count the pending signature ``token`` stands for; return its receipt code, shown once.

    Supersedes a paper signature by the same person, clears the token, its
    expiry and the time of the last mail (a counted signature keeps only its
    day), and publishes if a batch is due. A token works once.
    """
    digest = _digest_of(token)
    require_open(petition)
    receipt = new_receipt()
    with database.atomic():
        signature = _pending_by_digest(services, petition, digest)
        supersede_paper_of(petition.id, bytes(signature.person_tag))
        confirmed = (
            Signature.update(
                status=COUNTED,
                receipt_hash=receipt_digest(parse_receipt(receipt)),
                day=services.clock().date(),
                token_hash=None,
                token_expires=None,
                token_sent_at=None,
                sealed_contact=None,
            )
            .where((Signature.id == signature.id) & (Signature.status == PENDING) & (Signature.token_hash == digest))
            .execute()
        )
        if confirmed != 1:
            raise UnknownToken()  # confirmed by a request at the same moment; rolls the supersede back
        if signature.sealed_contact is not None:
            # Moved out of the signature's row: the contact list stays unlinked.
            SealedContact.create(petition=petition.id, sealed=bytes(signature.sealed_contact))
    maybe_publish(services, petition)
    return receipt


def expire_pending(services):
    """Delete pending signatures whose link has expired, in every petition; return how many.

    Also forgets when an "already signed" mail last went about a counted
    signature, once the resend limit no longer needs it.
    """
    now = services.clock().replace(tzinfo=None)
    Signature.update(token_sent_at=None).where(
        (Signature.status != PENDING) & (Signature.token_sent_at <= now - services.resend_interval)
    ).execute()
    return (
        Signature.delete()
        .where((Signature.status == PENDING) & (Signature.token_expires.is_null() | (Signature.token_expires <= now)))
        .execute()
    )
