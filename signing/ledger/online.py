"""Online signatures: the signer's path from form to the inbox.

Every submission does the same writes whatever the person's state (new,
duplicate, pending, counted, withdrawn, on paper): one inbox row, and where
the petition collects email one outbox row. Whether it counts is decided at
publish (settlement.py); which mail it causes is decided by the sender
(mailqueue.py), where only the mailbox's owner sees the difference.
"""

from crypto.errors import InvalidIdentity
from crypto.normalise import canonical_email, postcode_district
from crypto.receipts import issue_receipt
from crypto.tokens import new_token

from ..db import database, insert_row
from ..models import ONLINE, Inbox
from . import contacts, mailqueue
from .errors import InvalidContact
from .identities import Submission, canonical_identity, compute_tags, deliverable_address
from .names import clean_display_name
from .petitions import require_open
from .publishing import maybe_publish


def sign_online(services, petition, *, name, postcode, email, display_name=None, contact=None):
    """Take an online signature into the inbox.

    Without email, the receipt code is returned, to be shown once; it reads
    "waiting" until the next batch, then "counted" (for a duplicate: the
    signature that counts for that person). With email, None is returned and
    the signer is told to check their mailbox; the signature is ready to
    count once the link mailed to them is followed (DESIGN §6).

    ``contact`` is an address given to be kept informed, where the petition
    offers it; it is sealed to the organiser's key here and never stored open.
    """
    require_open(petition)
    # What arrived before this request; never this request's own submission.
    maybe_publish(services, petition)
    identity = canonical_identity(services, petition, name=name, postcode=postcode, email=email)
    shown_name = clean_display_name(petition, display_name)
    address = deliverable_address(email) if identity.email is not None else None
    sealed = None
    if contact and contacts.offers_contact(petition):
        try:
            canonical_email(contact, services.dotless_domains)
            sealed = contacts.seal_contact(petition, deliverable_address(contact))
        except InvalidIdentity:
            raise InvalidContact() from None
    person, email_digest = compute_tags(services, petition, identity)
    district = postcode_district(identity.postcode) if identity.postcode else None
    submission = Submission(person, email_digest, shown_name, district, sealed)
    if email_digest is None:
        receipt, digest = issue_receipt()
        _insert(petition, submission, receipt_hash=digest, ready=True)
        return receipt
    token, digest = new_token()
    # Built here, in the request, where the link's address is known; sealed at once.
    payload = services.mailer.prepare(address, petition, token, services.confirm_ttl)
    with database.atomic():
        inbox_id = _insert(
            petition,
            submission,
            token_hash=digest,
            token_expires=services.naive_now() + services.confirm_ttl,
            ready=False,
        )
        mailqueue.enqueue(services, petition, email_digest, inbox_id, payload)
    return None


def _insert(petition, submission, **fields):
    """The inbox row's id."""
    return insert_row(
        Inbox,
        petition=petition.id,
        channel=ONLINE,
        person_tag=submission.person,
        email_tag=submission.email,
        display_name=submission.display_name,
        district=submission.district,
        sealed_contact=submission.sealed_contact,
        **fields,
    )
