"""Paper signatures an organiser adds: into the inbox, settled with the next batch.

The organiser is told how many rows were received, never which matched
somebody who already signed: that would answer "did this person sign?" one
row at a time (issue 11). Each person still counts once: settlement.py
drops a row whose person (or written-down email) already counts, and keeps
only the first of repeated rows. After the batch, the organiser sees what
the public sees: the count.
"""

from dataclasses import dataclass

from crypto.normalise import postcode_district

from ..db import bulk_insert, database
from ..models import PAPER, Inbox
from .identities import compute_tags_in_parallel
from .petitions import require_open
from .publishing import maybe_publish


@dataclass(frozen=True)
class PaperResult:
    received: int


def add_paper_signatures(services, petition, identities, progress=None):
    """Put paper signatures in the inbox; they count from the next batch, each person once (DESIGN §6)."""
    require_open(petition)
    maybe_publish(services, petition)  # what arrived before; never these rows
    tags = compute_tags_in_parallel(services, petition, identities, progress)
    rows = [
        (
            petition.id,
            PAPER,
            person,
            email,
            postcode_district(identity.postcode) if identity.postcode else None,
            True,
            False,
        )
        for identity, (person, email) in zip(identities, tags, strict=True)
    ]
    with database.atomic():
        bulk_insert(Inbox, ("petition", "channel", "person_tag", "email_tag", "district", "ready", "settled"), rows)
    return PaperResult(received=len(rows))
