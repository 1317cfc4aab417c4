"""Petitions: creation, look-up, and their lifecycle (draft, open, closed)."""

import json
import re
import unicodedata
from datetime import datetime, time

from crypto.keys import new_salt

from ..db import PreparedSelect, database, insert_unless_taken
from ..models import CLOSED, DRAFT, OPEN, PENDING, SHREDDED, Petition, Signature
from . import logstore
from .errors import InvalidPetition, PetitionNotDraft, PetitionNotOpen, PolicyFixed, SlugTaken
from .publishing import publish

SLUG_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?", re.ASCII)


# Titles go into mail headers (the Subject): a line break there would end the
# header, so any control character or line separator is refused, not escaped.
HEADER_TEXT_FIELDS = ("title", "title_zh")


def is_one_line(text):
    """True if ``text`` has no control character (tab and line breaks included) and no line or
    paragraph separator."""
    return not any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in text or "")


def _check_header_text(fields):
    for name in HEADER_TEXT_FIELDS:
        if name in fields and not is_one_line(fields[name]):
            raise InvalidPetition(f"the {name.replace('_', ' ')} must be one line, without control characters")


POLICY_FIELDS = ("require_email", "require_postcode", "allowed_areas", "display_names_allowed", "at_risk")


def create_petition(services, *, slug, title, body, eligibility="", status=OPEN, **policy):
    """Create a petition with a fresh salt and key, and its empty signed log.

    Raises InvalidPetition for a malformed slug, SlugTaken for one in use (the
    unique index decides, so two creations at once cannot both succeed).
    """
    if not SLUG_RE.fullmatch(slug or ""):
        raise InvalidPetition("slug must be 1-64 lower-case letters, digits or dashes")
    _check_header_text({"title": title, **policy})
    check_at_risk(policy)
    with database.atomic():
        return _insert_petition(services, slug, title, body, eligibility, status, policy)


def check_at_risk(policy):
    """A petition for signers at risk must ask for email: without it, anyone who
    knows a signer's name and postcode can test whether they signed (THREAT_MODEL.md R1)."""
    if policy.get("at_risk") and not policy.get("require_email", True):
        raise InvalidPetition("a petition for signers at risk must ask for an email address")


def _insert_petition(services, slug, title, body, eligibility, status, policy):
    inserted = insert_unless_taken(
        Petition,
        [Petition.slug],
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
    if not inserted:
        raise SlugTaken()
    petition = Petition.get(Petition.slug == slug)
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


_PETITION_AT = PreparedSelect(Petition, lambda slug: Petition.select().where(Petition.slug == slug).limit(1))


def public_petition(services, slug):
    """The petition at ``slug`` if the public may see it (after its dates apply), else None."""
    petition = _PETITION_AT.first(slug)
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
        # It stopped taking signatures when its last day ended, whenever this runs.
        close_petition(services, petition, at=datetime.combine(petition.closes_on, time(23, 59)))
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


def _set_status(petition, from_status, to_status, **fields):
    changed = (
        Petition.update(status=to_status, **fields)
        .where((Petition.id == petition.id) & (Petition.status == from_status))
        .execute()
    )
    if changed:
        petition.status = to_status
        for name, value in fields.items():
            setattr(petition, name, value)
    return changed


def update_petition(petition, **fields):
    """Change a petition's text, dates and policy.

    Policy and text are fixed once a petition opens: people signed what they
    read, under the rules they saw. Only the closing date may move after that.
    """
    _check_header_text(fields)
    if petition.status != DRAFT:
        # The contact key is fixed too: a session that could swap it would have
        # later "keep me informed" addresses sealed to someone else, unseen.
        fixed = set(fields) - {"closes_on", "thresholds"}
        changed = {name for name in fixed if _plain(getattr(petition, name)) != _plain(fields[name])}
        if changed:
            raise PolicyFixed()
    check_at_risk({"at_risk": petition.at_risk, "require_email": petition.require_email, **fields})
    Petition.update(**fields).where(Petition.id == petition.id).execute()
    return Petition.get_by_id(petition.id)


def _plain(value):
    # PostgreSQL hands bytea back as a memoryview, which does not compare equal to bytes.
    return bytes(value) if isinstance(value, memoryview) else value


def open_petition(petition):
    if not _set_status(petition, DRAFT, OPEN):
        raise PetitionNotDraft()


def close_petition(services, petition, at=None):
    """Close for signatures and publish the final batch, so the last head is final.

    ``at`` is when it stopped taking signatures (UTC): now, unless a closing
    date passed before anyone looked.
    """
    closed_at = (at or services.clock()).replace(tzinfo=None, second=0, microsecond=0)
    if not _set_status(petition, OPEN, CLOSED, closed_at=closed_at):
        raise PetitionNotOpen()
    Signature.delete().where((Signature.petition == petition.id) & (Signature.status == PENDING)).execute()
    # Whatever is waiting, however few; paper supersedes settled all at once.
    publish(services, petition, force=True, closing=True)
