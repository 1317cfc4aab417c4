"""Storage of each petition's Merkle log (DESIGN §7).

Leaves are kept verbatim (their bytes are what is hashed). The hash of every
complete subtree is kept as a ``Node`` row, so an append writes O(log n) rows
and any proof reads O(log n) rows, at a thousand leaves or at millions. The
tree arithmetic itself lives in ``crypto.merkle``; this module only reads and
writes rows. Callers hold ``db.log_lock`` around appends.
"""

from crypto import merkle
from crypto.treehead import TreeHead as SignedHead
from crypto.treehead import format_minute, sign_head

from .db import bulk_insert
from .models import Leaf, Node, TreeHead


def _complete_reader(petition_id):
    def complete(level, index):
        row = (
            Node.select(Node.hash)
            .where((Node.petition == petition_id) & (Node.level == level) & (Node.index == index))
            .get()
        )
        return bytes(row.hash)

    return complete


def subtree_hash(petition_id, start, end):
    return merkle.range_hash_from_complete(start, end, _complete_reader(petition_id))


def inclusion_proof(petition_id, index, size):
    """Requires 0 <= index < size <= the log's size."""
    return merkle.inclusion_proof(index, size, lambda s, e: subtree_hash(petition_id, s, e))


def consistency_proof(petition_id, first, second):
    """Requires 0 < first <= second <= the log's size."""
    return merkle.consistency_proof(first, second, lambda s, e: subtree_hash(petition_id, s, e))


def latest_head(petition_id):
    return TreeHead.select().where(TreeHead.petition == petition_id).order_by(TreeHead.size.desc()).first()


def all_heads(petition_id):
    return list(TreeHead.select().where(TreeHead.petition == petition_id).order_by(TreeHead.size))


def head_at(petition_id, size):
    return TreeHead.get_or_none((TreeHead.petition == petition_id) & (TreeHead.size == size))


def append_leaves(petition_id, size, leaves):
    """Append ``leaves`` (bytes) after the first ``size``; return the new root."""
    frontier = merkle.Frontier.from_nodes(size, _complete_reader(petition_id))
    leaf_rows, node_rows = [], []
    for offset, data in enumerate(leaves):
        leaf_rows.append((petition_id, size + offset, data))
        for level, index, digest in frontier.append(merkle.leaf_hash(data)):
            node_rows.append((petition_id, level, index, digest))
    bulk_insert(Leaf, ("petition", "index", "data"), leaf_rows)
    bulk_insert(Node, ("petition", "level", "index", "hash"), node_rows)
    return frontier.root()


def store_head(petition, size, root, count, keyring, now):
    head = SignedHead(petition=petition.slug, size=size, root=root, count=count, time=format_minute(now))
    return TreeHead.create(
        petition=petition.id,
        size=size,
        root=root,
        count=count,
        time=head.time,
        signature=sign_head(keyring.log_key, head),
        key_id=keyring.log_key_id,
        published_at=now.replace(tzinfo=None),
    )


def signed_head(row, slug):
    """The crypto-level head of a stored row, for serialising and verifying."""
    return SignedHead(petition=slug, size=row.size, root=bytes(row.root), count=row.count, time=row.time)


def leaf_at(petition_id, index):
    row = Leaf.select(Leaf.data).where((Leaf.petition == petition_id) & (Leaf.index == index)).get()
    return bytes(row.data)


def iter_leaves(petition_id, start, end, chunk=10_000):
    """Leaf bytes for indexes [start, end), read in index-ordered chunks."""
    position = start
    while position < end:
        upper = min(end, position + chunk)
        rows = (
            Leaf.select(Leaf.data)
            .where((Leaf.petition == petition_id) & (Leaf.index >= position) & (Leaf.index < upper))
            .order_by(Leaf.index)
            .tuples()
        )
        for (data,) in rows:
            yield bytes(data)
        position = upper
