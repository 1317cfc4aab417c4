"""Online signatures: the signer's path from form to stored tags."""

from peewee import IntegrityError

from crypto.errors import InvalidIdentity
from crypto.normalise import canonical_email, postcode_district
from crypto.receipts import new_receipt, parse_receipt, receipt_digest

from ..db import database
from ..models import COUNTED, ONLINE, SealedContact, Signature
from . import contacts
from .confirmation import request_confirmation
from .errors import InvalidContact
from .identities import Submission, canonical_identity, compute_tags, deliverable_address
from .names import clean_display_name
from .petitions import require_open
from .publishing import maybe_publish, supersede_paper_of


def sign_online(services, petition, *, name, postcode, email, display_name=None, contact=None):
    """Take an online signature.

    Where the petition collects no email, the signature counts at once and
    its receipt code is returned, to be shown once. Where it does, None is
    returned and the signer is told to check their mailbox: the signature
    counts only once the link mailed to them is followed (DESIGN §6), see
    ``request_confirmation``.

    A duplicate changes nothing, yet gets exactly the same answer as a new
    signature: the response must not tell a stranger that somebody already
    signed (DESIGN §2, threat 4). Without email, the duplicate's receipt code
    has the same shape but is never stored, so it later reads as unknown;
    with email, only the mailbox owner learns it was a duplicate.

    ``contact`` is an address given to be kept informed, where the petition
    offers it; it is sealed to the organiser's key here and never stored open.
    """
    require_open(petition)
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
        return _count_at_once(services, petition, submission)
    request_confirmation(services, petition, address, submission)
    return None


def _count_at_once(services, petition, submission):
    receipt = new_receipt()
    try:
        with database.atomic():
            supersede_paper_of(petition.id, submission.person)
            Signature.create(
                petition=petition.id,
                person_tag=submission.person,
                email_tag=None,
                channel=ONLINE,
                status=COUNTED,
                receipt_hash=receipt_digest(parse_receipt(receipt)),
                display_name=submission.display_name,
                district=submission.district,
                day=services.clock().date(),
            )
            if submission.sealed_contact is not None:
                SealedContact.create(petition=petition.id, sealed=submission.sealed_contact)
    except IntegrityError:
        pass  # a duplicate: the unique indexes refused it, the supersede rolled back
    maybe_publish(services, petition)
    return receipt
