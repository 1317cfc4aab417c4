"""The domain: every rule about petitions and signatures (DESIGN §6–§8).

Blueprints and the CLI parse their input and call one function here; nothing
else decides whether a signature counts. Functions take a ``Services`` with
the keys, settings and clock, so tests can inject time and the CLI and the
web share one code path.

What reaches this module as raw identity (a name, an email address, a
postcode) lives only in local variables for the length of one call: it is
canonicalised, turned into tags, and dropped. It is never stored, logged, or
put in an exception.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from peewee import Case, IntegrityError, fn

from crypto import leaves as leaf_format
from crypto.errors import InvalidIdentity
from crypto.keys import PURPOSE_TAGS, new_salt
from crypto.normalise import (
    DEFAULT_DOTLESS_DOMAINS,
    canonical_email,
    canonical_name,
    canonical_postcode,
    postcode_area,
    postcode_district,
)
from crypto.receipts import new_receipt, parse_receipt, receipt_digest
from crypto.tags import DEFAULT_ARGON2, Argon2Params, email_tag, person_tag

from . import checkpoints, contacts, logstore, witnessing
from .db import bulk_insert, database, log_lock, scrub_freed_space
from .mail import MailError
from .models import (
    CLOSED,
    COUNTED,
    DRAFT,
    ONLINE,
    OPEN,
    PAPER,
    PENDING,
    SHREDDED,
    WITHDRAWN,
    Petition,
    SealedContact,
    Signature,
)

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", re.ASCII)
DISPLAY_NAME_MAX_CHARS = 60


def utcnow():
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    keyring: object
    publish_interval: timedelta = timedelta(minutes=10)
    dotless_domains: frozenset = DEFAULT_DOTLESS_DOMAINS
    argon2: Argon2Params = DEFAULT_ARGON2
    clock: object = field(default=utcnow)
    # Sends confirmation mail (signing.mail.Mailer); None where none is sent.
    mailer: object = None
    confirm_ttl: timedelta = timedelta(days=7)
    resend_interval: timedelta = timedelta(minutes=5)
    # Bounds the Argon2id computations running at once (signing.throttle.TagThrottle); None: no bound.
    throttle: object = None
    # Checkpoints (signing.checkpoints): the origin prefix and the witnesses asked to cosign.
    log_origin: str = "countersign.invalid"
    witnesses: tuple = ()
    witness_timeout: float = 5.0


class LedgerError(Exception):
    """A request the rules refuse; each subclass is one reason, shown by the caller in its own words."""


class PetitionNotOpen(LedgerError):
    """The petition does not take signatures now (draft, closed or shredded)."""


class PostcodeNotEligible(LedgerError):
    field = "postcode"


class InvalidDisplayName(LedgerError):
    field = "display_name"


class InvalidContact(LedgerError):
    field = "contact_email"


class UnknownReceipt(LedgerError):
    """No signature on this petition has that receipt."""


class InvalidPetition(LedgerError):
    """A petition's settings break a rule (for example its slug)."""


class MalformedToken(LedgerError):
    """Not shaped like a confirmation token at all (refused before any lookup)."""



class UnknownToken(LedgerError):
    """No pending signature has this token: never issued, replaced, or already used."""



class ExpiredToken(LedgerError):
    """The confirmation link was valid but is too old."""


# --- petitions --------------------------------------------------------------


def create_petition(services, *, slug, title, body, eligibility="", status=OPEN, **policy):
    """Create a petition with a fresh salt and key, and its empty signed log."""
    if not SLUG_RE.fullmatch(slug or ""):
        raise InvalidPetition("slug must be 1-64 lower-case letters, digits or dashes")
    with database.atomic():
        petition = Petition.create(
            slug=slug,
            title=title,
            body=body,
            eligibility=eligibility,
            status=status,
            salt=new_salt(),
            wrapped_key=services.keyring.wrap_new_petition_key(slug),
            argon2_params=json.dumps(services.argon2.to_dict()),
            **policy,
        )
        logstore.store_head(petition, 0, logstore.merkle.EMPTY_ROOT, 0, services.keyring, services.clock())
    return petition


def listed_petitions():
    return Petition.select().where(Petition.status.in_([OPEN, CLOSED, "shredded"])).order_by(Petition.id.desc())


def public_petition(services, slug):
    """The petition at ``slug`` if the public may see it (after its dates apply), else None."""
    petition = Petition.get_or_none(Petition.slug == slug)
    if petition is None:
        return None
    petition = apply_schedule(services, petition)
    return None if petition.status == DRAFT else petition


def current_count(petition):
    """The count of the latest signed tree head: a stored figure, never COUNT(*)."""
    head = logstore.latest_head(petition.id)
    return head.count if head else 0


def display_names(petition, before_id=None, limit=50):
    """Display names of counted signatures, newest first, by keyset page (hidden ones flagged)."""
    query = Signature.select(Signature.id, Signature.display_name, Signature.display_name_hidden).where(
        (Signature.petition == petition.id) & (Signature.status == COUNTED) & Signature.display_name.is_null(False)
    )
    if before_id is not None:
        query = query.where(Signature.id < before_id)
    return list(query.order_by(Signature.id.desc()).limit(limit))


# --- signing ----------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The canonical forms of what a signer typed; lives for one call only."""

    name: str
    postcode: str
    email: str | None

    def __repr__(self):
        return "Identity(<redacted>)"


def canonical_identity(services, petition, *, name, postcode, email, email_optional=False):
    """Canonicalise and check eligibility; raises InvalidIdentity or PostcodeNotEligible.

    Online, the petition's policy decides whether an email is asked for; on
    paper (``email_optional``) one is used when the signer wrote one down.
    """
    canon_name = canonical_name(name or "")
    canon_postcode = ""
    if petition.require_postcode or (postcode or "").strip():
        canon_postcode = canonical_postcode(postcode or "")
        areas = petition.allowed_area_list
        if areas and postcode_area(canon_postcode) not in areas:
            raise PostcodeNotEligible(", ".join(areas))
    canon_email = None
    wants_email = (email or "").strip() if email_optional else petition.require_email
    if wants_email:
        canon_email = canonical_email(email or "", services.dotless_domains)
    return Identity(canon_name, canon_postcode, canon_email)


def clean_display_name(petition, display_name):
    text = " ".join((display_name or "").split())
    if not text or not petition.display_names_allowed:
        return None
    if len(text) > DISPLAY_NAME_MAX_CHARS or any(not ch.isprintable() for ch in text):
        raise InvalidDisplayName()
    return text


def compute_tags(services, petition, identity):
    """(person tag, email tag or None) under the petition's own key and cost.

    Waits briefly for a tag slot, else raises throttle.TagsBusy before
    anything is computed or stored.
    """
    tag_key = services.keyring.petition_subkey(petition, PURPOSE_TAGS)
    params, salt = petition.argon2, bytes(petition.salt)
    with _tag_slot(services):
        person = person_tag(tag_key, salt, params, identity.name, identity.postcode)
        email = email_tag(tag_key, salt, params, identity.email) if identity.email is not None else None
    return person, email


def _tag_slot(services, patient=False):
    return nullcontext() if services.throttle is None else services.throttle.slot(patient=patient)


def require_open(petition):
    if not petition.accepts_signatures:
        raise PetitionNotOpen()


@dataclass(frozen=True)
class Submission:
    """One online signature as it may be stored: tags and public fields only."""

    person: bytes
    email: bytes | None
    display_name: str | None
    district: str | None
    # The "keep me informed" address, sealed to the organiser (contacts.py).
    sealed_contact: bytes | None = None


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


def supersede_paper_of(petition_id, person):
    """Withdraw a counted paper signature by the person an online one is counted for.

    An online signature supersedes a counted paper one by the same person
    (same person tag), so they count once (DESIGN §6). Call it in the same
    transaction that makes the online signature count.
    """
    (
        Signature.update(status=WITHDRAWN, withdraw_reason="superseded", display_name=None)
        .where(
            (Signature.petition == petition_id)
            & (Signature.person_tag == person)
            & (Signature.channel == PAPER)
            & (Signature.status == COUNTED)
        )
        .execute()
    )


# Characters that would make an address mean something else in an SMTP
# command or a To header; canonical_email has refused whitespace already.
_ADDRESS_SPECIALS = frozenset('<>()[]\\,;:"')


def deliverable_address(raw):
    """The address a message is sent to: as typed (NFKC, trimmed), since only
    the mailbox's own server knows whether ``+suffix`` or dots matter to it.
    Raises InvalidIdentity for what canonical_email lets through but no
    message could safely be addressed to. Never stored.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if any(ch in _ADDRESS_SPECIALS for ch in text):
        raise InvalidIdentity("email", "The email address contains characters that cannot be used.")
    return text


# --- email confirmation ------------------------------------------------------

# secrets.token_urlsafe(32): 32 bytes as 43 base64url characters, no padding.
TOKEN_BYTES = 32
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{43}", re.ASCII)


def new_token():
    """A fresh confirmation token (32 bytes from the OS CSPRNG) and the digest stored for it."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    return token, token_digest(token)


def token_digest(token):
    """SHA-256 of the token's 32 bytes: all the database ever holds of it.

    Raises MalformedToken, before any lookup, for anything but 43 base64url
    characters that decode to 32 bytes with zero padding bits (so each token
    has exactly one written form).
    """
    if not isinstance(token, str) or not _TOKEN_RE.fullmatch(token):
        raise MalformedToken()
    raw = base64.urlsafe_b64decode(token + "=")
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
        raise MalformedToken()
    return hashlib.sha256(raw).digest()


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
    digest = token_digest(token)
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
    digest = token_digest(token)
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


# --- receipts and withdrawal ------------------------------------------------


@dataclass(frozen=True)
class ReceiptStatus:
    """What a receipt holder may see about their own signature."""

    state: str  # "waiting", "counted" or "withdrawn"
    signature: Signature
    head: object = None  # the latest head row, when the leaf is in the log
    proof: list = field(default_factory=list)


def find_signature(petition, receipt_code):
    """The signature a receipt code stands for; InvalidReceipt or UnknownReceipt otherwise."""
    digest = receipt_digest(parse_receipt(receipt_code))
    signature = Signature.get_or_none((Signature.petition == petition.id) & (Signature.receipt_hash == digest))
    if signature is None:
        raise UnknownReceipt()
    return signature


def receipt_status(services, petition, receipt_code):
    signature = find_signature(petition, receipt_code)
    maybe_publish(services, petition)
    signature = Signature.get_by_id(signature.id)
    if signature.status == WITHDRAWN:
        return ReceiptStatus("withdrawn", signature)
    if signature.leaf_index is None:
        return ReceiptStatus("waiting", signature)
    head = logstore.latest_head(petition.id)
    proof = logstore.inclusion_proof(petition.id, signature.leaf_index, head.size)
    return ReceiptStatus("counted", signature, head, proof)


def receipt_proof_document(services, petition, status):
    """The single JSON file a signer downloads to check inclusion offline."""
    leaf = logstore.leaf_at(petition.id, status.signature.leaf_index)
    return {
        "format": "countersign-receipt-proof/v1",
        "petition": petition.slug,
        "public_key": services.keyring.log_public_key.hex(),
        "leaf": leaf.decode("utf-8"),
        "index": status.signature.leaf_index,
        "head": logstore.signed_head(status.head, petition.slug).to_dict(),
        "signature": bytes(status.head.signature).hex(),
        "proof": [node.hex() for node in status.proof],
        # The same head as a C2SP checkpoint, with the witnesses' cosignatures so far.
        "checkpoint": checkpoints.cosigned_checkpoint(services, petition, status.head),
    }


def withdraw(services, petition, receipt_code):
    """Withdraw the signature a receipt stands for; idempotent."""
    require_open(petition)
    signature = find_signature(petition, receipt_code)
    with database.atomic():
        (
            Signature.update(status=WITHDRAWN, withdraw_reason="signer", display_name=None)
            .where((Signature.id == signature.id) & (Signature.status != WITHDRAWN))
            .execute()
        )
        _resign_superseded_paper(petition.id, signature.id)
    maybe_publish(services, petition)


def _resign_superseded_paper(petition_id, online_id):
    """An online signature withdrawn before its batch: the paper one it superseded is withdrawn by the signer.

    The log's rule (crypto/audit.py, _check_batch) lets a batch withdraw a paper
    signature as "superseded" only alongside an online signature leaf; this one
    will never be appended. The same person (same person tag) has withdrawn, so
    the paper signature's withdrawal, not yet in the log, is theirs: "signer".
    """
    online = Signature.alias()
    unpublished_online = online.select(online.id).where(
        (online.id == online_id)
        & (online.channel == ONLINE)
        & online.leaf_index.is_null()
        & (online.person_tag == Signature.person_tag)
    )
    (
        Signature.update(withdraw_reason="signer")
        .where(
            (Signature.petition == petition_id)
            & (Signature.channel == PAPER)
            & (Signature.status == WITHDRAWN)
            & (Signature.withdraw_reason == "superseded")
            & Signature.leaf_index.is_null(False)
            & Signature.withdrawal_index.is_null()
            & fn.EXISTS(unpublished_online)
        )
        .execute()
    )


# --- the public log ---------------------------------------------------------


def maybe_publish(services, petition):
    """Publish a batch if the interval has passed; cheap when it has not."""
    head = logstore.latest_head(petition.id)
    if head is not None and services.clock().replace(tzinfo=None) - head.published_at < services.publish_interval:
        return None
    return publish(services, petition)


def publish(services, petition, force=False):
    """Append what is waiting as one shuffled batch and sign a new head.

    Returns the new head row, or None when nothing was waiting (or, unless
    ``force``, the interval has not passed since the last batch — checked
    again under the lock, since another process may have just published).
    """
    with log_lock(petition.id):
        now = services.clock()
        head = logstore.latest_head(petition.id)
        if not force and head is not None and now.replace(tzinfo=None) - head.published_at < services.publish_interval:
            return None
        size, count = (head.size, head.count) if head else (0, 0)
        _supersede_paper(petition.id)
        arrived = list(
            Signature.select(
                Signature.id,
                Signature.channel,
                Signature.person_tag,
                Signature.email_tag,
                Signature.receipt_hash,
                Signature.day,
            ).where(
                (Signature.petition == petition.id) & (Signature.status == COUNTED) & Signature.leaf_index.is_null()
            )
        )
        departed = list(
            Signature.select(Signature.id, Signature.leaf_index, Signature.withdraw_reason).where(
                (Signature.petition == petition.id)
                & (Signature.status == WITHDRAWN)
                & Signature.leaf_index.is_null(False)
                & Signature.withdrawal_index.is_null()
            )
        )
        if not arrived and not departed:
            return None
        batch = [("signature", s) for s in arrived] + [("withdrawal", s) for s in departed]
        # Shuffled with the OS CSPRNG so log order says nothing about arrival order.
        secrets.SystemRandom().shuffle(batch)
        today = now.date()
        leaves = []
        positions = {Signature.leaf_index: {}, Signature.withdrawal_index: {}}
        for offset, (kind, signature) in enumerate(batch):
            index = size + offset
            if kind == "signature":
                email = _optional_bytes(signature.email_tag)
                # An online signature with an email tag publishes no person tag:
                # it would let a prober signing as someone find their other
                # signature (crypto/leaves.py). The database keeps it, for supersede.
                person = None if signature.channel == ONLINE and email is not None else bytes(signature.person_tag)
                leaves.append(
                    leaf_format.signature_leaf(
                        signature.channel,
                        person,
                        email,
                        _optional_bytes(signature.receipt_hash),
                        signature.day,
                    )
                )
                positions[Signature.leaf_index][signature.id] = index
            else:
                leaves.append(leaf_format.withdrawal_leaf(signature.leaf_index, signature.withdraw_reason, today))
                positions[Signature.withdrawal_index][signature.id] = index
        for column, by_id in positions.items():
            _set_positions(column, by_id)
        root = logstore.append_leaves(petition.id, size, leaves)
        new_count = count + len(arrived) - len(departed)
        head = logstore.store_head(petition, size + len(leaves), root, new_count, services.keyring, now)
    witnessing.after_publish(services, petition, head)
    return head


def _set_positions(column, by_id, chunk=500):
    """Record log positions with one UPDATE per chunk rather than one per signature."""
    items = list(by_id.items())
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        (
            Signature.update({column: Case(Signature.id, part)})
            .where(Signature.id.in_([signature_id for signature_id, _ in part]))
            .execute()
        )


def _supersede_paper(petition_id):
    """Withdraw counted paper signatures that a counted online one shares a person tag with.

    ``sign_online`` does this as it inserts; doing it again under the log lock
    keeps the log's rule (DESIGN §6) true even when a paper import and an
    online signature by the same person race each other. Only pairs with a
    member not yet in the log need looking at: older pairs were settled.
    """
    online = Signature.alias()
    clash = online.select(online.id).where(
        (online.petition == petition_id)
        & (online.person_tag == Signature.person_tag)
        & (online.channel == ONLINE)
        & (online.status == COUNTED)
        & (online.leaf_index.is_null() | Signature.leaf_index.is_null())
    )
    (
        Signature.update(status=WITHDRAWN, withdraw_reason="superseded", display_name=None)
        .where(
            (Signature.petition == petition_id)
            & (Signature.channel == PAPER)
            & (Signature.status == COUNTED)
            & fn.EXISTS(clash)
        )
        .execute()
    )


def _optional_bytes(value):
    return None if value is None else bytes(value)



# --- organisers: lifecycle, paper, moderation, shredding ---------------------


class PetitionNotClosed(LedgerError):
    """Only a closed petition can be shredded or certified."""


class ConcurrentImport(LedgerError):
    """Another import added the same people at the same moment; nothing was added."""


POLICY_FIELDS = ("require_email", "require_postcode", "allowed_areas", "display_names_allowed")


def apply_schedule(services, petition):
    """Open or close ``petition`` if its dates say so; return it as it now is.

    Dates are whole UTC days: a petition opens at the start of ``opens_on``
    and takes signatures through the end of ``closes_on``. Called wherever a
    petition is looked up, so nobody has to act on the day.
    """
    today = services.clock().date()
    ends_before_today = petition.closes_on is not None and petition.closes_on < today
    due = False
    if petition.status == DRAFT and petition.opens_on is not None and petition.opens_on <= today:
        if not ends_before_today:
            due = True
            _set_status(petition, DRAFT, OPEN)
    if petition.status == OPEN and ends_before_today:
        due = True
        close_petition(services, petition)
    # Read it again only when a change was due (this or another process made
    # it): on every other look-up the row just read is current.
    return Petition.get_by_id(petition.id) if due else petition


def apply_all_schedules(services):
    today = services.clock().date()
    due = Petition.select().where(
        ((Petition.status == DRAFT) & (Petition.opens_on <= today))
        | ((Petition.status == OPEN) & (Petition.closes_on < today))
    )
    for petition in due:
        apply_schedule(services, petition)


def _set_status(petition, from_status, to_status):
    changed = (
        Petition.update(status=to_status)
        .where((Petition.id == petition.id) & (Petition.status == from_status))
        .execute()
    )
    if changed:
        petition.status = to_status
    return changed


def update_petition(petition, **fields):
    """Change a petition's text, dates and policy.

    Policy and text are fixed once a petition opens: people signed what they
    read, under the rules they saw. Only the closing date may move after that.
    """
    if petition.status != DRAFT:
        # A lost contact key may be replaced; new contacts are sealed to the new one.
        fixed = set(fields) - {"closes_on", "thresholds", "contact_public_key"}
        changed = {name for name in fixed if getattr(petition, name) != fields[name]}
        if changed:
            raise PetitionNotOpen("only a draft's text and policy can change")
    Petition.update(**fields).where(Petition.id == petition.id).execute()
    return Petition.get_by_id(petition.id)


def open_petition(petition):
    if not _set_status(petition, DRAFT, OPEN):
        raise PetitionNotOpen("only a draft can be opened")


def close_petition(services, petition):
    """Close for signatures and publish the final batch, so the last head is final."""
    if not _set_status(petition, OPEN, CLOSED):
        raise PetitionNotOpen("only an open petition can be closed")
    Signature.delete().where((Signature.petition == petition.id) & (Signature.status == PENDING)).execute()
    publish(services, petition, force=True)


@dataclass(frozen=True)
class PaperResult:
    added: int
    skipped: int


def compute_tags_in_parallel(services, petition, identities, progress=None):
    """Tags for many identities, on every core: argon2-cffi releases the GIL."""
    tag_key = services.keyring.petition_subkey(petition, PURPOSE_TAGS)
    params, salt = petition.argon2, bytes(petition.salt)

    def tags_of(identity):
        # Each row waits its turn for a slot (first come, first served), so an
        # import shares the cores with signers instead of shutting them out.
        with _tag_slot(services, patient=True):
            person = person_tag(tag_key, salt, params, identity.name, identity.postcode)
            email = email_tag(tag_key, salt, params, identity.email) if identity.email is not None else None
        return person, email

    results = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for result in pool.map(tags_of, identities):
            results.append(result)
            if progress is not None:
                progress(1)
    return results


def add_paper_signatures(services, petition, identities, progress=None):
    """Count paper signatures, each person once (DESIGN §6).

    A paper signature is skipped when its person tag (or, if an email was
    written down, its email tag) matches a live signature, or an earlier row
    of the same batch. The caller learns how many were skipped, never which.
    """
    require_open(petition)
    tags = compute_tags_in_parallel(services, petition, identities, progress)
    live_persons = _live_tags(petition.id, Signature.person_tag, [person for person, _ in tags])
    live_emails = _live_tags(petition.id, Signature.email_tag, [email for _, email in tags if email])
    today = services.clock().date()
    rows, seen = [], set()
    for identity, (person, email) in zip(identities, tags, strict=True):
        if person in seen or person in live_persons or (email is not None and email in live_emails):
            continue
        seen.add(person)
        if email is not None:
            live_emails.add(email)
        district = postcode_district(identity.postcode) if identity.postcode else None
        rows.append((petition.id, person, PAPER, COUNTED, district, today, False))
    try:
        with database.atomic():
            bulk_insert(
                Signature,
                ("petition", "person_tag", "channel", "status", "district", "day", "display_name_hidden"),
                rows,
            )
    except IntegrityError:
        raise ConcurrentImport() from None
    maybe_publish(services, petition)
    return PaperResult(added=len(rows), skipped=len(identities) - len(rows))


def _live_tags(petition_id, column, tags, chunk=500):
    found = set()
    for start in range(0, len(tags), chunk):
        # Counted only: a pending online signature that confirms later
        # supersedes the paper one; one that expires must not have blocked it.
        query = Signature.select(column).where(
            (Signature.petition == petition_id)
            & (Signature.status == COUNTED)
            & column.in_(tags[start : start + chunk])
        )
        found.update(bytes(value) for (value,) in query.tuples())
    return found


def hide_display_name(services, petition, signature_id, hidden=True):
    """Moderate a public display name; the signature still counts."""
    return (
        Signature.update(display_name_hidden=hidden, moderated_on=services.clock().date())
        .where(
            (Signature.petition == petition.id)
            & (Signature.id == signature_id)
            & Signature.display_name.is_null(False)
        )
        .execute()
    )


def shred(services, petition):
    """Destroy a closed petition's key: from now on no tag can be computed for it.

    The log, the totals and the certificate remain. The wrapped key's bytes
    are scrubbed from the database file too (see db.scrub_freed_space).
    """
    if petition.status != CLOSED:
        raise PetitionNotClosed()
    publish(services, petition, force=True)
    with database.atomic():
        Petition.update(wrapped_key=None, status=SHREDDED).where(Petition.id == petition.id).execute()
        Signature.delete().where((Signature.petition == petition.id) & (Signature.status == PENDING)).execute()
    scrub_freed_space()
    return Petition.get_by_id(petition.id)


@dataclass(frozen=True)
class Certificate:
    petition: Petition
    head: object
    signed_head: object
    online: int
    paper: int
    public_key: bytes
    key_id: str


def certificate(services, petition):
    """The figures a council is handed for a closed petition."""
    if petition.status not in (CLOSED, SHREDDED):
        raise PetitionNotClosed()
    head = logstore.latest_head(petition.id)
    by_channel = dict(
        Signature.select(Signature.channel, fn.COUNT(Signature.id))
        .where(in_latest_head(petition.id))
        .group_by(Signature.channel)
        .tuples()
    )
    return Certificate(
        petition=petition,
        head=head,
        signed_head=logstore.signed_head(head, petition.slug),
        online=by_channel.get(ONLINE, 0),
        paper=by_channel.get(PAPER, 0),
        public_key=services.keyring.log_public_key,
        key_id=services.keyring.log_key_id,
    )


def in_latest_head(petition_id):
    """Signatures the latest head counts: appended, and no withdrawal appended."""
    return (
        (Signature.petition == petition_id)
        & Signature.leaf_index.is_null(False)
        & Signature.withdrawal_index.is_null()
    )
