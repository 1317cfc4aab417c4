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

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from peewee import IntegrityError

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

from . import logstore
from .db import database, log_lock
from .models import (
    CLOSED,
    COUNTED,
    ONLINE,
    OPEN,
    PAPER,
    WITHDRAWN,
    Petition,
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


class LedgerError(Exception):
    """A request the rules refuse; ``code`` picks the message shown."""

    code = "refused"


class PetitionNotOpen(LedgerError):
    code = "not_open"


class PostcodeNotEligible(LedgerError):
    code = "postcode_not_eligible"
    field = "postcode"


class InvalidDisplayName(LedgerError):
    code = "display_name"
    field = "display_name"


class UnknownReceipt(LedgerError):
    code = "unknown_receipt"


class InvalidPetition(LedgerError):
    code = "invalid_petition"


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


def public_petition(slug):
    """The petition at ``slug`` if the public may see it, else None."""
    return Petition.get_or_none((Petition.slug == slug) & (Petition.status != "draft"))


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


def canonical_identity(services, petition, *, name, postcode, email):
    """Canonicalise and check eligibility; raises InvalidIdentity or PostcodeNotEligible."""
    canon_name = canonical_name(name or "")
    canon_postcode = ""
    if petition.require_postcode or (postcode or "").strip():
        canon_postcode = canonical_postcode(postcode or "")
        areas = petition.allowed_area_list
        if areas and postcode_area(canon_postcode) not in areas:
            raise PostcodeNotEligible(", ".join(areas))
    canon_email = None
    if petition.require_email:
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
    """(person tag, email tag or None) under the petition's own key and cost."""
    tag_key = services.keyring.petition_subkey(petition, PURPOSE_TAGS)
    params, salt = petition.argon2, bytes(petition.salt)
    person = person_tag(tag_key, salt, params, identity.name, identity.postcode)
    email = email_tag(tag_key, salt, params, identity.email) if identity.email is not None else None
    return person, email


def require_open(petition):
    if not petition.accepts_signatures:
        raise PetitionNotOpen()


def sign_online(services, petition, *, name, postcode, email, display_name=None):
    """Record an online signature and return its receipt code, shown once.

    A duplicate (a live signature with the same email tag, or the same person
    tag where the petition collects no email) changes nothing, yet gets a
    receipt code of the same shape: the response must not tell a stranger
    that somebody already signed (DESIGN §2, threat 4). That code is never
    stored, so it later reads as unknown.
    """
    require_open(petition)
    identity = canonical_identity(services, petition, name=name, postcode=postcode, email=email)
    shown_name = clean_display_name(petition, display_name)
    person, email_digest = compute_tags(services, petition, identity)
    receipt = new_receipt()
    try:
        with database.atomic():
            # An online signature supersedes a counted paper one by the same
            # person, so they count once (DESIGN §6).
            (
                Signature.update(status=WITHDRAWN, withdraw_reason="superseded", display_name=None)
                .where(
                    (Signature.petition == petition.id)
                    & (Signature.person_tag == person)
                    & (Signature.channel == PAPER)
                    & (Signature.status == COUNTED)
                )
                .execute()
            )
            Signature.create(
                petition=petition.id,
                person_tag=person,
                email_tag=email_digest,
                channel=ONLINE,
                status=COUNTED,
                receipt_hash=receipt_digest(parse_receipt(receipt)),
                display_name=shown_name,
                district=postcode_district(identity.postcode) if identity.postcode else None,
                day=services.clock().date(),
            )
    except IntegrityError:
        pass  # a duplicate: the unique indexes refused it, the supersede rolled back
    maybe_publish(services, petition)
    return receipt


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
    }


def withdraw(services, petition, receipt_code):
    """Withdraw the signature a receipt stands for; idempotent."""
    require_open(petition)
    signature = find_signature(petition, receipt_code)
    (
        Signature.update(status=WITHDRAWN, withdraw_reason="signer", display_name=None)
        .where((Signature.id == signature.id) & (Signature.status != WITHDRAWN))
        .execute()
    )
    maybe_publish(services, petition)


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
        for offset, (kind, signature) in enumerate(batch):
            index = size + offset
            if kind == "signature":
                leaves.append(
                    leaf_format.signature_leaf(
                        signature.channel,
                        bytes(signature.person_tag),
                        _optional_bytes(signature.email_tag),
                        _optional_bytes(signature.receipt_hash),
                        signature.day,
                    )
                )
                Signature.update(leaf_index=index).where(Signature.id == signature.id).execute()
            else:
                leaves.append(leaf_format.withdrawal_leaf(signature.leaf_index, signature.withdraw_reason, today))
                Signature.update(withdrawal_index=index).where(Signature.id == signature.id).execute()
        root = logstore.append_leaves(petition.id, size, leaves)
        new_count = count + len(arrived) - len(departed)
        return logstore.store_head(petition, size + len(leaves), root, new_count, services.keyring, now)


def _optional_bytes(value):
    return None if value is None else bytes(value)


__all__ = [
    "InvalidIdentity",
    "LedgerError",
    "PetitionNotOpen",
    "PostcodeNotEligible",
    "UnknownReceipt",
    "Services",
    "create_petition",
    "sign_online",
    "withdraw",
    "receipt_status",
    "publish",
]
