"""Paper signatures an organiser adds, each person counted once."""

from dataclasses import dataclass

from peewee import IntegrityError

from crypto.normalise import postcode_district

from ..db import bulk_insert, database
from ..models import COUNTED, PAPER, Signature
from .errors import ConcurrentImport
from .identities import compute_tags_in_parallel
from .petitions import require_open
from .publishing import maybe_publish


@dataclass(frozen=True)
class PaperResult:
    added: int
    skipped: int


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
