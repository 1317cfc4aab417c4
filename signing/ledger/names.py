"""Public display names: cleaning, paging, moderation."""

from ..models import COUNTED, Signature
from .errors import InvalidDisplayName

DISPLAY_NAME_MAX_CHARS = 60


def clean_display_name(petition, display_name):
    text = " ".join((display_name or "").split())
    if not text or not petition.display_names_allowed:
        return None
    if len(text) > DISPLAY_NAME_MAX_CHARS or any(not ch.isprintable() for ch in text):
        raise InvalidDisplayName()
    return text


def display_names(petition, before_index=None, limit=50):
    """Display names of counted signatures in the published log, by log position, last first.

    Paged by leaf index, which publish assigns in shuffled order: no
    insertion-ordered value (a row id) is ever shown, and a name appears only
    once its batch is published (issue 11).
    """
    query = Signature.select(Signature.leaf_index, Signature.display_name, Signature.display_name_hidden).where(
        (Signature.petition == petition.id)
        & (Signature.status == COUNTED)
        & Signature.display_name.is_null(False)
        & Signature.leaf_index.is_null(False)
    )
    if before_index is not None:
        query = query.where(Signature.leaf_index < before_index)
    return list(query.order_by(Signature.leaf_index.desc()).limit(limit))


def hide_display_name(services, petition, leaf_index, hidden=True):
    """Moderate a public display name, named by its log position; the signature still counts."""
    return (
        Signature.update(display_name_hidden=hidden, moderated_on=services.clock().date())
        .where(
            (Signature.petition == petition.id)
            & (Signature.leaf_index == leaf_index)
            & Signature.display_name.is_null(False)
        )
        .execute()
    )
