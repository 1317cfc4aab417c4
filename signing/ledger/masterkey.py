"""Moving every stored key under a new master key (``signing rotate-master-key``).

Why: a copy of the database made before a petition was shredded (a backup,
a dump, a WAL archive) still holds that petition's wrapped key, and the
master key that opens it. Once every live key is wrapped under a new master
key and the old one is destroyed, such a copy holds only keys nobody can
open. Shredded petitions have no key to move, so they stay shredded.
"""

from crypto import keys
from crypto.errors import InvalidKey

from ..db import database
from ..models import Petition
from .accounts import reseal_two_factor_secrets


def rewrap_stored_keys(old_master_key, new_master_key):
    """Re-wrap every petition key and re-seal every TOTP secret under ``new_master_key``, in one
    transaction; rows the new key opens already (an interrupted run) are left. Returns the count moved."""
    moved = 0
    with database.atomic():
        rows = Petition.select(Petition.id, Petition.slug, Petition.wrapped_key).where(
            Petition.wrapped_key.is_null(False)
        )
        for petition in rows:
            wrapped = bytes(petition.wrapped_key)
            if _opens(new_master_key, wrapped, petition.slug):
                continue
            if old_master_key is None:
                raise InvalidKey(f"petition {petition.slug}: its key is under neither the old nor the new master key")
            rewrapped = keys.rewrap(old_master_key, new_master_key, wrapped, petition.slug)
            Petition.update(wrapped_key=rewrapped).where(Petition.id == petition.id).execute()
            moved += 1
        reseal_two_factor_secrets(old_master_key, new_master_key)
    return moved


def _opens(master_key, wrapped, slug):
    try:
        keys.unwrap_petition_key(master_key, wrapped, slug)
    except InvalidKey:
        return False
    return True
