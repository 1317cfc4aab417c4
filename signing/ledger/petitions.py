"""Petitions: creation, look-up, and their lifecycle (draft, open, closed)."""

import json
import re

from peewee import IntegrityError

from crypto.keys import new_salt

from ..db import database
from ..models import CLOSED, DRAFT, OPEN, PENDING, SHREDDED, Petition, Signature
from . import logstore
from .errors import InvalidPetition, PetitionNotDraft, PetitionNotOpen, PolicyFixed, SlugTaken
from .publishing import publish

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", re.ASCII)


POLICY_FIELDS = ("require_email", "require_postcode", "allowed_areas", "display_names_allowed", "at_risk")


def create_petition(services, *, slug, title, body, eligibility="", status=OPEN, **policy):
    """Create a petition with a fresh salt and key, and its empty signed log.

    Raises InvalidPetition for a malformed slug, SlugTaken for one in use (the
    unique index decides, so two creations at once cannot both succeed).
    """
    if not SLUG_RE.fullmatch(slug or ""):
        raise InvalidPetition("slug must be 1-64 lower-case letters, digits or dashes")
    check_at_risk(policy)
    try:
        with database.atomic():
            petition = _insert_petition(services, slug, title, body, eligibility, status, policy)
    except IntegrityError:
        raise SlugTaken() from None
    return petition


def check_at_risk(policy):
    """A petition for signers at risk must ask for email: without it, anyone who
    knows a signer's name and postcode can test whether they signed (THREAT_MODEL.md R1)."""
    if policy.get("at_risk") and not policy.get("require_email", True):
        raise InvalidPetition("a petition for signers at risk must ask for an email address")


def _insert_petition(services, slug, title, body, eligibility, status, policy):
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
    return Petition.select().where(Petition.status.in_([OPEN, CLOSED, SHREDDED])).order_by(Petition.id.desc())


def petition_by_slug(slug):
    """The petition at ``slug`` whatever its status (for organisers and the CLI), or None."""
    return Petition.get_or_none(Petition.slug == slug)


def petition_by_id(petition_id):
    return Petition.get_or_none(Petition.id == petition_id)


def published_petitions(slugs=None):
    """Petitions that have left draft, optionally only those at ``slugs``."""
    query = Petition.select().where(Petition.status != DRAFT)
    if slugs:
        query = query.where(Petition.slug.in_(slugs))
    return list(query)


def largest_argon2_memory_kib(default_kib):
    """The most memory any petition's tags need: workers must be sized for it."""
    return max([default_kib] + [petition.argon2.memory_kib for petition in Petition.select(Petition.argon2_params)])


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


def require_open(petition):
    if not petition.accepts_signatures:
        raise PetitionNotOpen()


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
            raise PolicyFixed()
    check_at_risk({"at_risk": petition.at_risk, "require_email": petition.require_email, **fields})
    Petition.update(**fields).where(Petition.id == petition.id).execute()
    return Petition.get_by_id(petition.id)


def open_petition(petition):
    if not _set_status(petition, DRAFT, OPEN):
        raise PetitionNotDraft()


def close_petition(services, petition):
    """Close for signatures and publish the final batch, so the last head is final."""
    if not _set_status(petition, OPEN, CLOSED):
        raise PetitionNotOpen()
    Signature.delete().where((Signature.petition == petition.id) & (Signature.status == PENDING)).execute()
    # Whatever is waiting, however few; paper supersedes settled all at once.
    publish(services, petition, force=True, closing=True)
