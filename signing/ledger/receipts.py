"""Receipts: what a signer may check about their own signature, and withdrawal."""

from dataclasses import dataclass, field

from peewee import fn

from crypto.receipts import parse_receipt, receipt_digest

from ..db import database
from ..models import ONLINE, PAPER, WITHDRAWN, Signature
from . import checkpoints, logstore
from .errors import UnknownReceipt
from .petitions import require_open
from .publishing import maybe_publish


@dataclass(frozen=True)
class ReceiptStatus:
    """What a receipt holder may see about their own signature."""

    state: str  # "waiting", "counted" or "withdrawn"
    signature: Signature
    head: object = None  # the latest head row, when the leaf is in the log
    proof: list = field(default_factory=list)


def find_signature(petition, receipt_code):
    """The signature a receipt code stands for; InvalidReceipt or UnknownReceipt otherwise."""
    digest = receipt_digest(parse_receipt(receipt_code))
    signature = Signature.get_or_none((Signature.petition == petition.id) & (Signature.receipt_hash == digest))
    if signature is None:
        raise UnknownReceipt()
    return signature


def receipt_status(services, petition, receipt_code):
    signature = find_signature(petition, receipt_code)
    maybe_publish(services, petition)
    signature = Signature.get_by_id(signature.id)
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
    """Withdraw the signature a receipt stands for; idempotent."""
    require_open(petition)
    signature = find_signature(petition, receipt_code)
    with database.atomic():
        (
            Signature.update(status=WITHDRAWN, withdraw_reason="signer", display_name=None)
            .where((Signature.id == signature.id) & (Signature.status != WITHDRAWN))
            .execute()
        )
        _resign_superseded_paper(petition.id, signature.id)
    maybe_publish(services, petition)


def _resign_superseded_paper(petition_id, online_id):
    """An online signature withdrawn before its batch: the paper one it superseded is withdrawn by the signer.

    The log's rule (crypto/audit.py, _check_batch) lets a batch withdraw a paper
    signature as "superseded" only alongside an online signature leaf; this one
    will never be appended. The same person (same person tag) has withdrawn, so
    the paper signature's withdrawal, not yet in the log, is theirs: "signer".
    """
    online = Signature.alias()
    unpublished_online = online.select(online.id).where(
        (online.id == online_id)
        & (online.channel == ONLINE)
        & online.leaf_index.is_null()
        & (online.person_tag == Signature.person_tag)
    )
    (
        Signature.update(withdraw_reason="signer")
        .where(
            (Signature.petition == petition_id)
            & (Signature.channel == PAPER)
            & (Signature.status == WITHDRAWN)
            & (Signature.withdraw_reason == "superseded")
            & Signature.leaf_index.is_null(False)
            & Signature.withdrawal_index.is_null()
            & fn.EXISTS(unpublished_online)
        )
        .execute()
    )
