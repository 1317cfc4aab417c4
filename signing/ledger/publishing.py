"""The public log: batches of signatures and withdrawals, shuffled, under a signed head."""

import secrets

from peewee import Case, fn

from crypto import leaves as leaf_format

from ..db import log_lock
from ..models import COUNTED, ONLINE, PAPER, WITHDRAWN, Signature
from . import logstore, settlement, witnessing


class _TooSmall(Exception):
    """Fewer than MIN_BATCH entries: the settlement is rolled back, to wait for more."""


def maybe_publish(services, petition):
    """At the START of a request, before it writes anything: publish if due.

    So a batch holds only what arrived before the request that triggered it,
    never that request's own submission (THREAT_MODEL.md, "batches"). Where
    the background thread publishes on schedule (background.py), requests
    leave it to that and spend nothing on it.
    """
    if services.scheduled_publishing:
        return None
    return publish_if_due(services, petition)


def publish_if_due(services, petition):
    """Publish a batch if the interval has passed; cheap when it has not."""
    head = logstore.latest_head(petition.id)
    if head is not None and services.clock().replace(tzinfo=None) - head.published_at < services.publish_interval:
        return None
    return publish(services, petition)


def publish(services, petition, force=False, closing=False):
    """Settle the inbox, append what counts as one shuffled batch and sign a new head.

    Returns the new head row, or None when nothing was waiting, or fewer than
    ``services.min_batch`` entries were (unless ``closing``), or, unless
    ``force``, the interval has not passed since the last batch (checked
    again under the lock, since another process may have just published).
    """
    try:
        return _publish(services, petition, force, closing)
    except _TooSmall:
        return None


def _publish(services, petition, force, closing):
    with log_lock(petition.id):
        now = services.clock()
        head = logstore.latest_head(petition.id)
        if not force and head is not None and now.replace(tzinfo=None) - head.published_at < services.publish_interval:
            return None
        size, count = (head.size, head.count) if head else (0, 0)
        settlement.settle(petition.id, settlement.boundary_of(petition.id), now.date())
        if closing:
            settlement.drop_unconfirmed(petition.id)
            _supersede_paper(petition.id)
        arrived = list(
            Signature.select(
                Signature.id,
                Signature.channel,
                Signature.person_tag,
                Signature.email_tag,
                Signature.receipt_hash,
                Signature.day,
            ).where(
                (Signature.petition == petition.id) & (Signature.status == COUNTED) & Signature.leaf_index.is_null()
            )
        )
        departed = list(
            Signature.select(Signature.id, Signature.leaf_index, Signature.withdraw_reason).where(
                (Signature.petition == petition.id)
                & (Signature.status == WITHDRAWN)
                & Signature.leaf_index.is_null(False)
                & Signature.withdrawal_index.is_null()
            )
        )
        if not arrived and not departed:
            return None
        if len(arrived) + len(departed) < services.min_batch and not closing:
            raise _TooSmall()  # rolls the settlement back; it waits for the next try
        batch = [("signature", s) for s in arrived] + [("withdrawal", s) for s in departed]
        # Shuffled with the OS CSPRNG so log order says nothing about arrival order.
        secrets.SystemRandom().shuffle(batch)
        today = now.date()
        leaves = []
        positions = {Signature.leaf_index: {}, Signature.withdrawal_index: {}}
        for offset, (kind, signature) in enumerate(batch):
            index = size + offset
            if kind == "signature":
                email = _optional_bytes(signature.email_tag)
                # An online signature with an email tag publishes no person tag:
                # it would let a prober signing as someone find their other
                # signature (crypto/leaves.py). The database keeps it, for supersede.
                person = None if signature.channel == ONLINE and email is not None else bytes(signature.person_tag)
                leaves.append(
                    leaf_format.signature_leaf(
                        signature.channel,
                        person,
                        email,
                        _optional_bytes(signature.receipt_hash),
                        signature.day,
                    )
                )
                positions[Signature.leaf_index][signature.id] = index
            else:
                leaves.append(leaf_format.withdrawal_leaf(signature.leaf_index, signature.withdraw_reason, today))
                positions[Signature.withdrawal_index][signature.id] = index
        for column, by_id in positions.items():
            _set_positions(column, by_id)
        root = logstore.append_leaves(petition.id, size, leaves)
        new_count = count + len(arrived) - len(departed)
        head = logstore.store_head(petition, size + len(leaves), root, new_count, services.keyring, now)
    witnessing.after_publish(services, petition, head)
    return head


def _set_positions(column, by_id, chunk=500):
    """Record log positions with one UPDATE per chunk rather than one per signature."""
    items = list(by_id.items())
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        (
            Signature.update({column: Case(Signature.id, part)})
            .where(Signature.id.in_([signature_id for signature_id, _ in part]))
            .execute()
        )


def _supersede_paper(petition_id):
    """At close, all at once: withdraw counted paper signatures a counted online one shares a person tag with.

    Not done as signatures arrive: a "superseded" withdrawal in the batch
    after a stranger signed in a paper signer's name would tell them the
    person signed on paper (issue 11). Until close such a person counts twice;
    the final head counts them once (DESIGN §6), and the close batch shows
    only how many were superseded, never which probe caused which.
    """
    online = Signature.alias()
    clash = online.select(online.id).where(
        (online.petition == petition_id)
        & (online.person_tag == Signature.person_tag)
        & (online.channel == ONLINE)
        & (online.status == COUNTED)
    )
    (
        Signature.update(status=WITHDRAWN, withdraw_reason="superseded", display_name=None)
        .where(
            (Signature.petition == petition_id)
            & (Signature.channel == PAPER)
            & (Signature.status == COUNTED)
            & fn.EXISTS(clash)
        )
        .execute()
    )


def _optional_bytes(value):
    return None if value is None else bytes(value)


def in_latest_head(petition_id):
    """Signatures the latest head counts: appended, and no withdrawal appended."""
    return (
        (Signature.petition == petition_id)
        & Signature.leaf_index.is_null(False)
        & Signature.withdrawal_index.is_null()
    )
