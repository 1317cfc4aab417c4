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


def display_names(petition, before_id=None, limit=50):
    """Display names of counted signatures, newest first, by keyset page (hidden ones flagged)."""
    query = Signature.select(Signature.id, Signature.display_name, Signature.display_name_hidden).where(
        (Signature.petition == petition.id) & (Signature.status == COUNTED) & Signature.display_name.is_null(False)
    )
    if before_id is not None:
        query = query.where(Signature.id < before_id)
    return list(query.order_by(Signature.id.desc()).limit(limit))


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
