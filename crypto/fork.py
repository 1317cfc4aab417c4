"""Comparing two views of one log, and fork proofs anyone can check (``signing-audit compare``).

A view is a statement signed by the log key about its tree: a C2SP checkpoint
(checked with the log's vkey, crypto/note.py) or a signed tree head
(crypto/treehead.py, checked with its raw public key). Two views are
consistent when the smaller tree is a prefix of the larger. They are a fork
when they cannot both be true:

- same size, different roots; or
- sizes m < n, with nodes of the larger tree that hash to its signed root
  (so they are that tree's, by collision resistance) and give a root at size
  m other than the one signed for m (crypto.merkle.consistency_roots).

Fork proof ``countersign-fork-proof/v1``, one JSON object::

    {"format":"countersign-fork-proof/v1","key":KEY,"statements":[A,B],"proof":[B64,...]}

where KEY is the log's vkey (for checkpoints) or its public key in hex (for
tree heads), A and B are the two statements as signed (a checkpoint note as a
string, or a {"head":…,"signature":…} object), A the smaller or equal size,
and ``proof`` the consistency nodes with their seed (empty for equal sizes).
verify_fork_proof checks every signature and the arithmetic; nothing else is
trusted, so the proof convinces someone who trusts only the log key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from crypto.errors import Equivocation, InvalidBundle, InvalidProof
from crypto.merkle import consistency_proof, consistency_roots, verify_consistency
from crypto.note import Verifier, open_checkpoint
from crypto.treehead import TreeHead, verify_head

FORK_FORMAT = "countersign-fork-proof/v1"
_FORK_KEYS = frozenset({"format", "key", "statements", "proof"})


@dataclass(frozen=True)
class View:
    """One verified signed statement of the log's size and root, kept as signed."""

    size: int
    root: bytes
    statement: object  # the note (str) or {"head": ..., "signature": ...}
    label: str  # for messages: "checkpoint" or "tree head"


def checkpoint_view(note: str, log: Verifier) -> View:
    """A checkpoint note, verified under the log's vkey."""
    checkpoint, _ = open_checkpoint(note, log)
    # Kept whole: cosignatures ride along (and are ignored here).
    return View(checkpoint.size, checkpoint.root, note, "checkpoint")


def head_view(document: dict, public_key: bytes) -> View:
    """A {"head": ..., "signature": ...} object, verified under the raw public key."""
    if not isinstance(document, dict) or set(document) != {"head", "signature"}:
        raise InvalidBundle('a signed tree head is {"head": ..., "signature": ...}')
    head = TreeHead.from_dict(document["head"])
    try:
        signature = bytes.fromhex(document["signature"])
    except (TypeError, ValueError):
        raise InvalidBundle("a tree head signature is hex") from None
    verify_head(public_key, head, signature)
    return View(head.size, head.root, document, "tree head")


def compare(a: View, b: View, subtree: Callable[[int, int], bytes] | None = None, proof=None) -> None:
    """Return if the views are consistent; raise Equivocation (with a fork proof's parts) if not.

    For different sizes, either ``subtree(start, end)`` (roots over the larger
    view's leaves, e.g. from its bundle) or ``proof`` (the log's RFC 9162
    consistency proof, without seed) must be given; otherwise InvalidProof
    says consistency cannot be decided from two statements alone.
    """
    small, large = (a, b) if a.size <= b.size else (b, a)
    if small.size == large.size:
        if small.root != large.root:
            raise Equivocation(f"fork: two {small.label}s of size {small.size} with different roots", [])
        return
    if small.size == 0:
        return  # every tree extends the empty one
    if subtree is not None:
        nodes = consistency_proof(small.size, large.size, subtree)
        if _seeded(small.size):
            nodes = [subtree(0, small.size), *nodes]
        if subtree(0, large.size) != large.root:
            raise InvalidProof(f"the leaves given do not give the signed root at size {large.size}")
        first, _ = consistency_roots(small.size, large.size, nodes)
        if first != small.root:
            raise Equivocation(
                f"fork: the log at size {large.size} has root {base64.b64encode(first).decode()} at size "
                f"{small.size}, but the {small.label} of size {small.size} says "
                f"{base64.b64encode(small.root).decode()}",
                nodes,
            )
        return
    if proof is None:
        raise InvalidProof(
            f"sizes {small.size} and {large.size} differ: give the larger log's bundle or a consistency proof"
        )
    verify_consistency(small.size, large.size, small.root, large.root, proof)


def _seeded(size: int) -> bool:
    return size & (size - 1) == 0


def fork_proof(key: str, a: View, b: View, nodes: Sequence[bytes]) -> dict:
    """The fork proof document for two views found inconsistent (smaller first)."""
    small, large = (a, b) if a.size <= b.size else (b, a)
    return {
        "format": FORK_FORMAT,
        "key": key,
        "statements": [small.statement, large.statement],
        "proof": [base64.b64encode(node).decode("ascii") for node in nodes],
    }


def verify_fork_proof(document: object) -> str:
    """Check a fork proof; return a one-line description of what it proves.

    Raises InvalidBundle (malformed), InvalidSignature (a statement is not
    signed by the key) or InvalidProof (the statements are not shown to fork).
    """
    if not isinstance(document, dict) or set(document) != _FORK_KEYS:
        raise InvalidBundle(f"a fork proof is a JSON object with exactly the keys {sorted(_FORK_KEYS)}")
    if document["format"] != FORK_FORMAT:
        raise InvalidBundle(f"fork proof format is {document['format']!r}, want {FORK_FORMAT!r}")
    statements, key = document["statements"], document["key"]
    if not isinstance(statements, list) or len(statements) != 2 or not isinstance(key, str):
        raise InvalidBundle("a fork proof holds a key and two statements")
    views = [_view(statement, key) for statement in statements]
    try:
        nodes = [base64.b64decode(node, validate=True) for node in document["proof"]]
    except (TypeError, binascii.Error):
        raise InvalidBundle("fork proof nodes are base64") from None
    small, large = views
    if small.size > large.size:
        raise InvalidBundle("a fork proof lists the smaller statement first")
    who = f"the log key {key.split('+')[0] if '+' in key else key[:16]}"
    if small.size == large.size:
        if nodes or small.root == large.root:
            raise InvalidProof("these statements are the same size and agree: no fork")
        return f"FORK: {who} signed two different {small.label}s of size {small.size}"
    if small.size == 0:
        raise InvalidProof("every tree extends the empty one: no fork")
    first, second = consistency_roots(small.size, large.size, nodes)
    if second != large.root:
        raise InvalidProof(f"the proof's nodes do not give the signed root at size {large.size}")
    if first == small.root:
        raise InvalidProof("the statements are consistent: no fork")
    return (
        f"FORK: {who} signed size {small.size} with one root, and size {large.size} "
        f"over a tree whose first {small.size} leaves have another"
    )


def _view(statement: object, key: str) -> View:
    """A statement checked under KEY: a vkey (checkpoints, and heads by its raw key) or hex (heads)."""
    if "+" in key:
        log = Verifier.from_vkey(key)
        if isinstance(statement, str):
            return checkpoint_view(statement, log)
        return head_view(statement, log.public_key)
    if isinstance(statement, str):
        raise InvalidBundle("a checkpoint is checked with the log's vkey, not a bare public key")
    try:
        public_key = bytes.fromhex(key)
    except ValueError:
        raise InvalidBundle("the fork proof's key is not a vkey or a hex public key") from None
    return head_view(statement, public_key)


def dumps(document: dict) -> str:
    return json.dumps(document, indent=1, ensure_ascii=False, sort_keys=True)
