"""Storage of each petition's Merkle log (DESIGN §7).

Leaves are kept verbatim (their bytes are what is hashed). The hash of every
complete subtree is kept as a ``Node`` row, so an append writes O(log n) rows
and any proof reads O(log n) rows, in one query, at a thousand leaves or at
millions. The tree arithmetic itself lives in ``crypto.merkle``; this module
only reads and writes rows. Callers hold ``db.log_lock`` around appends.
"""

from functools import lru_cache

from crypto import merkle
from crypto.treehead import TreeHead as SignedHead
from crypto.treehead import format_minute, sign_head

from ..db import PreparedSelect, bulk_insert, database
from ..models import Leaf, Node, TreeHead

# Node pairs per query when reading many at once (bound parameters stay few).
_READ_CHUNK_NODES = 200
_PLACEHOLDER = bytes(merkle.HASH_BYTES)


def _read_nodes(petition_id, wanted):
    """{(level, index): hash} for every pair in ``wanted``, in one query (per 200 pairs)."""
    hashes = {}
    pairs = sorted(set(wanted))
    for start in range(0, len(pairs), _READ_CHUNK_NODES):
        chunk = pairs[start : start + _READ_CHUNK_NODES]
        params = []
        for level, index in chunk:
            params += (petition_id, level, index)
        for level, index, digest in database.execute_sql(_nodes_sql(len(chunk), database.param), params):
            hashes[(level, index)] = bytes(digest)
    missing = [pair for pair in pairs if pair not in hashes]
    if missing:
        raise Node.DoesNotExist(f"petition {petition_id} has no node (level, index) {missing[0]}")
    return hashes


@lru_cache(maxsize=64)
def _nodes_sql(count, param):
    """SELECT of ``count`` nodes by (petition, level, index), OR-ed point lookups.

    Written out rather than built by peewee on every proof (building it cost
    more than running it), and OR-ed rather than a row-value IN, which
    SQLite does not answer from the (petition, level, index) index.
    """
    table = Node._meta.table_name
    petition, level, index, digest = (f'"{f.column_name}"' for f in (Node.petition, Node.level, Node.index, Node.hash))
    lookup = f"({petition} = {param} AND {level} = {param} AND {index} = {param})"
    # Only names from the model and placeholders: the values travel as parameters.
    return f'SELECT {level}, {index}, {digest} FROM "{table}" WHERE ' + " OR ".join([lookup] * count)  # noqa: S608  # nosec B608


def _with_nodes(petition_id, build):
    """Run ``build(complete)`` with every complete-subtree hash it needs read in one query.

    Which subtrees a proof or a frontier reads depends only on the sizes and
    indexes involved, never on the hashes, so a dry run with placeholder
    hashes lists them and the second run gets the real ones. A proof then
    costs one database round trip at a million leaves as at a thousand.
    """
    wanted = []

    def record(level, index):
        wanted.append((level, index))
        return _PLACEHOLDER

    build(record)
    hashes = _read_nodes(petition_id, wanted)
    return build(lambda level, index: hashes[(level, index)])


def _ranges(complete):
    return lambda start, end: merkle.range_hash_from_complete(start, end, complete)


def subtree_hash(petition_id, start, end):
    return _with_nodes(petition_id, lambda complete: _ranges(complete)(start, end))


def inclusion_proof(petition_id, index, size):
    """Requires 0 <= index < size <= the log's size."""
    return _with_nodes(petition_id, lambda complete: merkle.inclusion_proof(index, size, _ranges(complete)))


def consistency_proof(petition_id, first, second):
    """Requires 0 < first <= second <= the log's size."""
    return _with_nodes(petition_id, lambda complete: merkle.consistency_proof(first, second, _ranges(complete)))


_LATEST_HEAD = PreparedSelect(
    TreeHead,
    lambda petition_id: TreeHead.select()
    .where(TreeHead.petition == petition_id)
    .order_by(TreeHead.size.desc())
    .limit(1),
)


def latest_head(petition_id):
    return _LATEST_HEAD.first(petition_id)


def all_heads(petition_id):
    return list(TreeHead.select().where(TreeHead.petition == petition_id).order_by(TreeHead.size))


def head_at(petition_id, size):
    return TreeHead.get_or_none((TreeHead.petition == petition_id) & (TreeHead.size == size))


def append_leaves(petition_id, size, leaves):
    """Append ``leaves`` (bytes) after the first ``size``; return the new root."""
    frontier = _with_nodes(petition_id, lambda complete: merkle.Frontier.from_nodes(size, complete))
    leaf_rows, node_rows = [], []
    for offset, data in enumerate(leaves):
        leaf_rows.append((petition_id, size + offset, data))
        for level, index, digest in frontier.append(merkle.leaf_hash(data)):
            node_rows.append((petition_id, level, index, digest))
    bulk_insert(Leaf, ("petition", "index", "data"), leaf_rows)
    bulk_insert(Node, ("petition", "level", "index", "hash"), node_rows)
    return frontier.root()


def store_head(petition, size, root, count, keyring, now):
    # The day only: a finer time would date the batch, and so its signatures,
    # to the minute (issue 11); the day is what leaves carry already.
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    head = SignedHead(petition=petition.slug, size=size, root=root, count=count, time=format_minute(day))
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
