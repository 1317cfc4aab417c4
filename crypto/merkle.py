"""Merkle tree hashing, proofs and their verification (RFC 9162 §2.1, same as RFC 6962 §2.1).

Hashes, all SHA-256 (HASH_BYTES = 32 bytes of output):

    leaf hash   MTH({d})        = SHA-256(0x00 || d)            LEAF_PREFIX = b"\\x00"
    node hash   MTH(D[n])       = SHA-256(0x01 || left || right) NODE_PREFIX = b"\\x01"
                where left = MTH(D[0:k]), right = MTH(D[k:n]), k = split_point(n)
    empty tree  MTH({})         = SHA-256()                      EMPTY_ROOT

The one-byte prefixes separate the two domains, so a leaf can never be passed
off as an interior node (second-preimage attack on the tree shape).

Complete subtrees are addressed as (level, index): the node at (level, index)
is MTH(D[index * 2**level : (index + 1) * 2**level]); level 0 is the leaf hash.

Building proofs and verifying them are kept apart. The builders take a
``subtree(start, end)`` callable returning MTH(D[start:end]) so the database
and in-memory code share them; they only ever ask for a range that is either a
complete aligned power-of-two subtree or a right edge ending at the tree size,
and at most one right edge per proof, so with ``range_hash_from_complete`` over
stored complete-subtree hashes a proof costs O(log n) node reads.

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2, return None, and raise
``InvalidProof`` carrying the numbers involved.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from hashlib import sha256

from crypto.errors import InvalidProof

HASH_BYTES = 32
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
EMPTY_ROOT = sha256(b"").digest()

Subtree = Callable[[int, int], bytes]
"""subtree(start, end) -> MTH(D[start:end])."""

Complete = Callable[[int, int], bytes]
"""complete(level, index) -> MTH(D[index * 2**level : (index + 1) * 2**level])."""


def leaf_hash(leaf: bytes) -> bytes:
    """Return SHA-256(0x00 || leaf), the hash of one log entry (RFC 9162 §2.1.1)."""
    return sha256(LEAF_PREFIX + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return SHA-256(0x01 || left || right), an interior node (RFC 9162 §2.1.1)."""
    return sha256(NODE_PREFIX + left + right).digest()


def split_point(n: int) -> int:
    """Return k, the largest power of two smaller than n. Requires n >= 2."""
    if n < 2:
        raise ValueError(f"split point of {n} is undefined, requires n >= 2")
    return 1 << ((n - 1).bit_length() - 1)


# --- building ----------------------------------------------------------------


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """Return PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, ordered leaf to root.

    Requires 0 <= index < size. Asks ``subtree`` for complete aligned subtrees
    and for at most one right edge [start, size).
    """
    if not 0 <= index < size:
        raise ValueError(f"inclusion proof for index {index} in size {size}: requires 0 <= index < size")
    proof = []
    lo, hi = 0, size
    while hi - lo > 1:
        k = split_point(hi - lo)
        if index < lo + k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
    proof.reverse()
    return proof


def consistency_proof(first: int, second: int, subtree: Subtree) -> list[bytes]:
    """Return PROOF(first, D[0:second]) of RFC 9162 §2.1.4.1, ordered leaf to root.

    Requires 0 < first <= second. When ``first`` is a power of two its root is
    not in the proof (SUBPROOF with b = true). Asks ``subtree`` for complete
    aligned subtrees and for at most one right edge [start, second).
    """
    if not 0 < first <= second:
        raise ValueError(f"consistency proof from size {first} to {second}: requires 0 < first <= second")
    proof = []
    lo, hi = 0, second
    whole = True  # SUBPROOF's b: the range is a whole tree of size `first` seen before
    while first != hi:
        k = split_point(hi - lo)
        if first <= lo + k:
            proof.append(subtree(lo + k, hi))
            hi = lo + k
        else:
            proof.append(subtree(lo, lo + k))
            lo += k
            whole = False
    if not whole:
        proof.append(subtree(lo, hi))
    proof.reverse()
    return proof


def range_hash_from_complete(start: int, end: int, complete: Complete) -> bytes:
    """Return MTH(D[start:end]) from stored complete-subtree hashes.

    Requires 0 <= start < end and start a multiple of the largest power of two
    not above end - start (true of every range a proof builder asks for). The
    range splits into complete subtrees following the binary digits of
    end - start, largest first; their hashes are folded right to left, reading
    at most log2(end - start) + 1 nodes.
    """
    width = end - start
    if start < 0 or width < 1:
        raise ValueError(f"range [{start}, {end}): requires 0 <= start < end")
    top = width.bit_length() - 1
    if start & ((1 << top) - 1):
        raise ValueError(f"range [{start}, {end}) is not aligned: start must be a multiple of {1 << top}")
    hashes = []
    pos = start
    for level in range(top, -1, -1):
        if width >> level & 1:
            hashes.append(complete(level, pos >> level))
            pos += 1 << level
    result = hashes.pop()
    while hashes:
        result = node_hash(hashes.pop(), result)
    return result


class Frontier:
    """The right edge of a growing tree (a "compact range" [0, size)).

    Holds one complete-subtree hash per set bit of ``size``, largest first, so
    appending costs amortised O(1) hashes and ``root()`` O(log n).
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        self._hashes: list[bytes] = []
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    @classmethod
    def from_nodes(cls, size: int, complete: Complete) -> Frontier:
        """Rebuild the frontier at ``size`` from stored complete-subtree hashes.

        Reads one node per set bit of ``size`` (at most log2(size) + 1).
        Requires size >= 0.
        """
        if size < 0:
            raise ValueError(f"frontier of size {size}: requires size >= 0")
        frontier = cls()
        start = 0
        for level in range(size.bit_length() - 1, -1, -1):
            if size >> level & 1:
                node = complete(level, start >> level)
                if len(node) != HASH_BYTES:
                    raise ValueError(f"node ({level}, {start >> level}) is {len(node)} bytes, want {HASH_BYTES}")
                frontier._hashes.append(node)
                start += 1 << level
        frontier._size = size
        return frontier

    def append(self, leaf_hash: bytes) -> list[tuple[int, int, bytes]]:
        """Add one leaf hash; return the complete subtrees this finishes.

        Each is (level, index, hash), level 0 first (the leaf itself at index
        ``size`` before the append). Storing them is all the database needs
        to answer any later proof.
        """
        if len(leaf_hash) != HASH_BYTES:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_BYTES}")
        index = self._size
        nodes = [(0, index, leaf_hash)]
        hashes = self._hashes
        node = leaf_hash
        level = 0
        while index & 1:
            node = sha256(NODE_PREFIX + hashes.pop() + node).digest()
            index >>= 1
            level += 1
            nodes.append((level, index, node))
        hashes.append(node)
        self._size += 1
        return nodes

    def push(self, leaf_hash: bytes) -> None:
        """Add one leaf hash without reporting the finished subtrees (fast path)."""
        if len(leaf_hash) != HASH_BYTES:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, want {HASH_BYTES}")
        index = self._size
        hashes = self._hashes
        node = leaf_hash
        while index & 1:
            node = sha256(NODE_PREFIX + hashes.pop() + node).digest()
            index >>= 1
        hashes.append(node)
        self._size += 1

    def root(self) -> bytes:
        """Return MTH(D[0:size]); EMPTY_ROOT when size is 0."""
        return root_of_edge(self._hashes)


def root_of_edge(hashes: Sequence[bytes]) -> bytes:
    """Return the root of a tree from its right edge: the complete-subtree hashes
    of a Frontier, largest first (one per set bit of the size), folded right to
    left. EMPTY_ROOT for no hashes.
    """
    if not hashes:
        return EMPTY_ROOT
    result = hashes[-1]
    for left in reversed(hashes[:-1]):
        result = node_hash(left, result)
    return result


def root_of(leaves: Sequence[bytes]) -> bytes:
    """Return MTH(leaves) for raw (unhashed) leaf entries."""
    frontier = Frontier()
    for leaf in leaves:
        frontier.push(leaf_hash(leaf))
    return frontier.root()


# --- verifying ---------------------------------------------------------------


def _check_hash(what: str, value: bytes) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_BYTES:
        got = len(value) if isinstance(value, bytes | bytearray) else type(value).__name__
        raise InvalidProof(f"{what} is {got} bytes, want {HASH_BYTES}")


def _inclusion_shape(index: int, size: int) -> tuple[int, int]:
    """Return (inner, border): proof nodes below and on the right border of the tree."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is entry ``index`` of the tree of ``size`` with ``root``.

    RFC 9162 §2.1.3.2. Requires 0 <= index < size; every hash 32 bytes.
    Returns None or raises InvalidProof.
    """
    if not 0 <= index < size:
        raise InvalidProof(f"index {index} is not in a tree of size {size}")
    _check_hash("leaf hash", leaf_hash)
    _check_hash("root", root)
    for i, node in enumerate(proof):
        _check_hash(f"proof element {i}", node)
    want = sum(_inclusion_shape(index, size))
    if len(proof) != want:
        raise InvalidProof(f"wrong proof size {len(proof)}, want {want}")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise InvalidProof(f"proof for index {index} in size {size} is too long")
        if fn & 1 or fn == sn:
            r = sha256(NODE_PREFIX + p + r).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = sha256(NODE_PREFIX + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof(f"proof for index {index} in size {size} is too short")
    if r != root:
        raise InvalidProof(f"inclusion proof for index {index} in size {size} gives root {r.hex()}, want {root.hex()}")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]) -> None:
    """Check that the tree of size ``first`` is a prefix of the tree of size ``second``.

    RFC 9162 §2.1.4.2. Requires 0 < first <= second (a proof from the empty
    tree proves nothing and is refused). When first == second the proof must
    be empty and the roots equal. Otherwise every hash must be 32 bytes, and
    when ``first`` is a power of two its root is not in the proof.
    Returns None or raises InvalidProof.
    """
    if first < 1:
        raise InvalidProof(f"consistency proof from size {first} is meaningless, requires first > 0")
    if first > second:
        raise InvalidProof(f"consistency proof from size {first} to smaller size {second}")
    if first == second:
        if proof:
            raise InvalidProof(f"wrong proof size {len(proof)}, want 0")
        if first_root != second_root:
            raise InvalidProof(f"roots at equal size {first} differ")
        return
    _check_hash("first root", first_root)
    _check_hash("second root", second_root)
    for i, node in enumerate(proof):
        _check_hash(f"proof element {i}", node)
    inner, border = _inclusion_shape(first - 1, second)
    shift = (first & -first).bit_length() - 1
    inner -= shift
    seeded = first == 1 << shift  # the old root is the seed, not in the proof
    want = (0 if seeded else 1) + inner + border
    if len(proof) != want:
        raise InvalidProof(f"wrong proof size {len(proof)}, want {want}")
    if seeded:
        proof = [first_root, *proof]
    fr, sr = consistency_roots(first, second, proof)
    if fr != first_root:
        raise InvalidProof(f"consistency proof from {first} to {second} does not match the root at size {first}")
    if sr != second_root:
        raise InvalidProof(f"consistency proof from {first} to {second} does not match the root at size {second}")


def consistency_roots(first: int, second: int, proof: Sequence[bytes]) -> tuple[bytes, bytes]:
    """The roots at sizes ``first`` and ``second`` that a consistency proof stands for.

    ``proof`` starts with its seed: for ``first`` a power of two, the root at
    ``first`` itself (which RFC 9162 leaves out of the proof). Requires
    0 < first < second. Used by verify_consistency, and to show a fork: nodes
    that give the second root but a first root other than the one signed.
    Raises InvalidProof if the proof is too short or too long.
    """
    if not 0 < first < second:
        raise InvalidProof(f"no consistency proof from size {first} to size {second}")
    inner, border = _inclusion_shape(first - 1, second)
    want = 1 + inner - ((first & -first).bit_length() - 1) + border
    if len(proof) != want:
        raise InvalidProof(f"wrong proof size {len(proof)} with its seed, want {want}")
    for i, node in enumerate(proof):
        _check_hash(f"proof element {i}", node)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            raise InvalidProof(f"consistency proof from {first} to {second} is too long")
        if fn & 1 or fn == sn:
            fr = sha256(NODE_PREFIX + c + fr).digest()
            sr = sha256(NODE_PREFIX + c + sr).digest()
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = sha256(NODE_PREFIX + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise InvalidProof(f"consistency proof from {first} to {second} is too short")
    return fr, sr
