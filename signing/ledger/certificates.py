"""The certificate a council is handed for a closed petition."""

from dataclasses import dataclass

from peewee import fn

from ..models import CLOSED, ONLINE, PAPER, SHREDDED, Petition, Signature
from . import logstore
from .errors import PetitionNotClosed
from .publishing import in_latest_head


@dataclass(frozen=True)
class Certificate:
    petition: Petition
    head: object
    signed_head: object
    online: int
    paper: int
    public_key: bytes
    key_id: str


def certificate(services, petition):
    """The figures a council is handed for a closed petition."""
    if petition.status not in (CLOSED, SHREDDED):
        raise PetitionNotClosed()
    head = logstore.latest_head(petition.id)
    by_channel = dict(
        Signature.select(Signature.channel, fn.COUNT(Signature.id))
        .where(in_latest_head(petition.id))
        .group_by(Signature.channel)
        .tuples()
    )
    return Certificate(
        petition=petition,
        head=head,
        signed_head=logstore.signed_head(head, petition.slug),
        online=by_channel.get(ONLINE, 0),
        paper=by_channel.get(PAPER, 0),
        public_key=services.keyring.log_public_key,
        key_id=services.keyring.log_key_id,
    )
