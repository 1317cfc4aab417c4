"""Receipts: what a signer may check about their own signature, and withdrawal."""

from dataclasses import dataclass, field

from crypto.receipts import parse_receipt, receipt_digest

from ..models import WITHDRAWN, Inbox, Signature
from . import checkpoints, logstore, settlement
from .errors import ReceiptCannotWithdraw, UnknownReceipt
from .petitions import require_open
from .publishing import maybe_publish


@dataclass(frozen=True)
class ReceiptStatus:
    """What a receipt holder may see about their own signature."""

    state: str  # "waiting", "counted" or "withdrawn"
    signature: Signature | None  # None while the submission waits in the inbox
    head: object = None  # the latest head row, when the leaf is in the log
    proof: list = field(default_factory=list)


@dataclass(frozen=True)
class _Found:
    signature: Signature | None  # None: still in the inbox, or withdrawn from it
    inbox: Inbox | None  # the inbox row the receipt was stored with, if not the signature's own
    linked: bool = False  # a later submission's receipt, leading to the signature that counts


def _find(petition, receipt_code):
    """What a receipt code stands for; InvalidReceipt or UnknownReceipt otherwise.

    Its own signature; or, for a submission settled as a duplicate, the
    signature that counts for that person (issue 16: a signer whose first
    answer was lost and who signed again holds a receipt that works); or a
    submission still waiting in the inbox.
    """
    digest = receipt_digest(parse_receipt(receipt_code))
    signature = Signature.get_or_none((Signature.petition == petition.id) & (Signature.receipt_hash == digest))
    if signature is not None:
        return _Found(signature, None)
    row = Inbox.get_or_none((Inbox.petition == petition.id) & (Inbox.receipt_hash == digest))
    if row is None:
        raise UnknownReceipt()
    if row.signature_id is None:
        return _Found(None, row)
    return _Found(Signature.get_by_id(row.signature_id), row, linked=True)


def find_signature(petition, receipt_code):
    """The signature a receipt leads to (None while it waits); raises as ``_find``."""
    return _find(petition, receipt_code).signature


def receipt_status(services, petition, receipt_code):
    maybe_publish(services, petition)
    found = _find(petition, receipt_code)
    signature = found.signature
    if signature is None:
        return ReceiptStatus("withdrawn" if found.inbox.settled else "waiting", None)
    if signature.status == WITHDRAWN:
        return ReceiptStatus("withdrawn", signature)
    if signature.leaf_index is None:
        return ReceiptStatus("waiting", signature)
    head = logstore.latest_head(petition.id)
    proof = logstore.inclusion_proof(petition.id, signature.leaf_index, head.size)
    return ReceiptStatus("counted", signature, head, proof)


def receipt_proof_document(services, petition, status):
    """The single JSON file a signer downloads to check inclusion offline."""
    leaf = logstore.leaf_at(petition.id, status.signature.leaf_index)
    return {
        "format": "countersign-receipt-proof/v1",
        "petition": petition.slug,
        "public_key": services.keyring.log_public_key.hex(),
        "leaf": leaf.decode("utf-8"),
        "index": status.signature.leaf_index,
        "head": logstore.signed_head(status.head, petition.slug).to_dict(),
        "signature": bytes(status.head.signature).hex(),
        "proof": [node.hex() for node in status.proof],
        # The same head as a C2SP checkpoint, with the witnesses' cosignatures so far.
        "checkpoint": checkpoints.cosigned_checkpoint(services, petition, status.head),
    }


def withdraw(services, petition, receipt_code):
    """Withdraw the signature a receipt stands for; idempotent.

    A submission still in the inbox is withdrawn from it (it will never
    count). A duplicate's receipt withdraws the signature that counts only
    where the petition collects email: there the receipt came from the
    mailbox's owner; without email anyone who knows a name and postcode can
    hold one, and must not be able to withdraw somebody else's signature.
    """
    require_open(petition)
    maybe_publish(services, petition)
    found = _find(petition, receipt_code)
    if found.signature is None:
        Inbox.update(settled=True, ready=False, **settlement.FORGOTTEN).where(Inbox.id == found.inbox.id).execute()
        return
    if found.linked and not petition.require_email:
        raise ReceiptCannotWithdraw()
    (
        Signature.update(status=WITHDRAWN, withdraw_reason="signer", display_name=None)
        .where((Signature.id == found.signature.id) & (Signature.status != WITHDRAWN))
        .execute()
    )
