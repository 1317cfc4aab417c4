"""Shredding: destroying a closed petition's key so no tag can be computed again."""

from ..db import database, scrub_freed_space
from ..models import CLOSED, PENDING, SHREDDED, Inbox, Outbox, Petition, Signature
from .errors import PetitionNotClosed
from .publishing import publish


def shred(services, petition):
    """Destroy a closed petition's key: from now on no tag can be computed for it.

    The log, the totals and the certificate remain. The wrapped key's bytes
    are scrubbed from the database file too (see db.scrub_freed_space).
    """
    if petition.status != CLOSED:
        raise PetitionNotClosed()
    publish(services, petition, force=True, closing=True)
    with database.atomic():
        # Nothing of the inbox or the outbox outlives the key (receipt links included).
        Outbox.delete().where(Outbox.petition == petition.id).execute()
        Inbox.delete().where(Inbox.petition == petition.id).execute()
        Petition.update(wrapped_key=None, status=SHREDDED).where(Petition.id == petition.id).execute()
        Signature.delete().where((Signature.petition == petition.id) & (Signature.status == PENDING)).execute()
    scrub_freed_space()
    return Petition.get_by_id(petition.id)
