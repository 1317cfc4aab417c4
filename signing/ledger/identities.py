"""From what a signer typed to tags: canonical forms, eligibility, Argon2id.

What reaches this module as raw identity (a name, an email address, a
postcode) lives only in local variables for the length of one call: it is
canonicalised, turned into tags, and dropped. It is never stored, logged, or
put in an exception.
"""

import os
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass

from crypto.errors import InvalidIdentity
from crypto.keys import PURPOSE_TAGS
from crypto.normalise import canonical_email, canonical_name, canonical_postcode, postcode_area
from crypto.tags import email_tag, person_tag

from .errors import PostcodeNotEligible


@dataclass(frozen=True)
class Identity:
    """The canonical forms of what a signer typed; lives for one call only."""

    name: str
    postcode: str
    email: str | None

    def __repr__(self):
        return "Identity(<redacted>)"


def canonical_identity(services, petition, *, name, postcode, email, email_optional=False):
    """Canonicalise and check eligibility; raises InvalidIdentity or PostcodeNotEligible.

    Online, the petition's policy decides whether an email is asked for; on
    paper (``email_optional``) one is used when the signer wrote one down.
    """
    canon_name = canonical_name(name or "")
    canon_postcode = ""
    if petition.require_postcode or (postcode or "").strip():
        canon_postcode = eligible_postcode(petition, postcode or "")
    canon_email = None
    wants_email = (email or "").strip() if email_optional else petition.require_email
    if wants_email:
        canon_email = canonical_email(email or "", services.dotless_domains)
    return Identity(canon_name, canon_postcode, canon_email)


def eligible_postcode(petition, postcode):
    """The canonical postcode, if the petition's areas allow it; InvalidIdentity or PostcodeNotEligible."""
    canon_postcode = canonical_postcode(postcode)
    areas = petition.allowed_area_list
    if areas and postcode_area(canon_postcode) not in areas:
        raise PostcodeNotEligible(", ".join(areas))
    return canon_postcode


def compute_tags(services, petition, identity):
    """(person tag, email tag or None) under the petition's own key and cost.

    Waits briefly for a tag slot, else raises throttle.TagsBusy before
    anything is computed or stored.
    """
    tag_key = services.keyring.petition_subkey(petition, PURPOSE_TAGS)
    params, salt = petition.argon2, bytes(petition.salt)
    with _tag_slot(services):
        person = person_tag(tag_key, salt, params, identity.name, identity.postcode)
        email = email_tag(tag_key, salt, params, identity.email) if identity.email is not None else None
    return person, email


def _tag_slot(services, patient=False):
    return nullcontext() if services.throttle is None else services.throttle.slot(patient=patient)


def compute_tags_in_parallel(services, petition, identities, progress=None):
    """Tags for many identities, on every core: argon2-cffi releases the GIL."""
    tag_key = services.keyring.petition_subkey(petition, PURPOSE_TAGS)
    params, salt = petition.argon2, bytes(petition.salt)

    def tags_of(identity):
        # Each row waits its turn for a slot (first come, first served), so an
        # import shares the cores with signers instead of shutting them out.
        with _tag_slot(services, patient=True):
            person = person_tag(tag_key, salt, params, identity.name, identity.postcode)
            email = email_tag(tag_key, salt, params, identity.email) if identity.email is not None else None
        return person, email

    results = []
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        for result in pool.map(tags_of, identities):
            results.append(result)
            if progress is not None:
                progress(1)
    return results


@dataclass(frozen=True)
class Submission:
    """One online signature as it may be stored: tags and public fields only."""

    person: bytes
    email: bytes | None
    display_name: str | None
    district: str | None
    # The "keep me informed" address, sealed to the organiser (contacts.py).
    sealed_contact: bytes | None = None


# Characters that would make an address mean something else in an SMTP
# command or a To header; canonical_email has refused whitespace already.
_ADDRESS_SPECIALS = frozenset('<>()[]\\,;:"')


def deliverable_address(raw):
    """The address a message is sent to: as typed (NFKC, trimmed), since only
    the mailbox's own server knows whether ``+suffix`` or dots matter to it.
    Raises InvalidIdentity for what canonical_email lets through but no
    message could safely be addressed to. Never stored.
    """
    text = unicodedata.normalize("NFKC", raw or "").strip()
    if any(ch in _ADDRESS_SPECIALS for ch in text):
        raise InvalidIdentity("email", "The email address contains characters that cannot be used.")
    return text
