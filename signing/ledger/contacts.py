"""Sealed "keep me informed" contacts (HPKE to the organiser's key).

The server seals and stores; only the organiser, offline, with a private key
that never reaches the server, can open them. A sealed contact is stored
apart from any signature so the list says nothing about who signed what.
"""

from crypto.errors import InvalidKey
from crypto.sealed import contact_info, open_sealed, seal

from ..models import SealedContact


def offers_contact(petition):
    return petition.contact_public_key is not None


def seal_contact(petition, address):
    """Seal a (checked) address to the petition's organiser key."""
    return seal(bytes(petition.contact_public_key), address.encode("utf-8"), contact_info(petition.slug))


def open_all(petition, private_key):
    """Every stored contact of ``petition``, opened; duplicates removed, sorted."""
    addresses, failures = set(), 0
    for (sealed,) in SealedContact.select(SealedContact.sealed).where(SealedContact.petition == petition.id).tuples():
        try:
            addresses.add(open_sealed(private_key, bytes(sealed), contact_info(petition.slug)).decode("utf-8"))
        except InvalidKey:
            failures += 1
    return sorted(addresses), failures
