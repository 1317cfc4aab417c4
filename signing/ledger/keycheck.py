"""Whether this instance's master key opens its petitions' keys (checked before serving)."""

from crypto.errors import InvalidKey

from ..models import Petition


def petitions_the_master_key_cannot_open(keyring):
    """Slugs of the petitions whose wrapped key ``keyring``'s master key does not open.

    Not empty means the instance runs with another instance's ``master.key``:
    every signature would fail, so ``signing`` refuses to start instead.
    Shredded petitions have no key left to open and are skipped.
    """
    refused = []
    for petition in Petition.select(Petition.slug, Petition.wrapped_key).where(Petition.wrapped_key.is_null(False)):
        try:
            keyring.petition_subkey(petition, "start-up-check")
        except InvalidKey:
            refused.append(petition.slug)
    return refused
