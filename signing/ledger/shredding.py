"""Shredding: destroying a closed petition's key so no tag can be computed again."""

from ..db import ScrubIncomplete, database, scrub_freed_space
from ..models import CLOSED, PENDING, SHREDDED, Inbox, Outbox, Petition, Signature
from .errors import PetitionNotClosed, ShredIncomplete
from .publishing import publish

WAIT_SECONDS = 60.0


def shred(services, petition, wait_seconds=WAIT_SECONDS):
    """Destroy a closed petition's key: from now on no tag can be computed for it.

    The log, the totals and the certificate remain. The wrapped key's bytes
    are then scrubbed from the database's files and searched for; if readers
    keep an old copy alive past ``wait_seconds`` this raises ShredIncomplete
    (the petition stays shredded: calling shred again finishes the scrub).
    Returns the places proven free of the key. Copies made before (backups)
    still hold it: see README, "Backups and shredding".
    """
    if petition.status not in (CLOSED, SHREDDED):
        raise PetitionNotClosed()
    wrapped = None
    if petition.status == CLOSED:
        publish(services, petition, force=True, closing=True)
        with database.atomic():
            wrapped = Petition.get_by_id(petition.id).wrapped_key
            # Nothing of the inbox or the outbox outlives the key (receipt links included).
            Outbox.delete().where(Outbox.petition == petition.id).execute()
            Inbox.delete().where(Inbox.petition == petition.id).execute()
            Petition.update(wrapped_key=None, status=SHREDDED).where(Petition.id == petition.id).execute()
            Signature.delete().where(
                (Signature.petition == petition.id) & (Signature.status == PENDING)
            ).execute()
    try:
        return scrub_freed_space(None if wrapped is None else bytes(wrapped), wait_seconds)
    except ScrubIncomplete as error:
        raise ShredIncomplete(str(error)) from None
