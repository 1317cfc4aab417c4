"""crypto/merkle.py against the published RFC 6962/9162 vectors and a naive reference."""

import json
from functools import cache
from hashlib import sha256
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crypto.errors import InvalidProof
from crypto.merkle import (
    EMPTY_ROOT,
    HASH_BYTES,
    LEAF_PREFIX,
    NODE_PREFIX,
    Frontier,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    range_hash_from_complete,
    root_of,
    split_point,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
MAX_LEAVES = 200


def load(name):
    return json.loads((VECTORS / name).read_text())


def unhex(values):
    return [bytes.fromhex(v) for v in values]


# --- naive reference, straight from RFC 6962 §2.1 (tests only) ----------------


def ref_k(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d):
    if len(d) == 0:
        return sha256(b"").digest()
    if len(d) == 1:
        return sha256(b"\x00" + d[0]).digest()
    k = ref_k(len(d))
    return sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m, d):
    if len(d) == 1:
        return []
    k = ref_k(len(d))
    if m < k:
        return ref_path(m, d[:k]) + [ref_mth(d[k:])]
    return ref_path(m - k, d[k:]) + [ref_mth(d[:k])]


def ref_subproof(m, d, b):
    n = len(d)
    if m == n:
        return [] if b else [ref_mth(d)]
    k = ref_k(n)
    if m <= k:
        return ref_subproof(m, d[:k], b) + [ref_mth(d[k:])]
    return ref_subproof(m - k, d[k:], False) + [ref_mth(d[:k])]


def ref_proof(m, d):
    return ref_subproof(m, d, True)


LEAVES = [i.to_bytes(4, "big") + b"leaf" for i in range(MAX_LEAVES)]


@cache
def subtree(start, end):
    """MTH(LEAVES[start:end]) by the reference, memoised; checks what builders ask for."""
    assert 0 <= start < end <= MAX_LEAVES
    return ref_mth(LEAVES[start:end])


def recording(size):
    """A subtree source that checks the builders' promise about the ranges they ask for."""
    asked = []

    def source(start, end):
        width = end - start
        complete = width & (width - 1) == 0 and start % width == 0
        assert complete or end == size, f"asked for [{start}, {end}) in size {size}"
        asked.append((start, end))
        return subtree(start, end)

    return source, asked


# --- primitives ---------------------------------------------------------------


def test_domain_separation_constants():
    assert LEAF_PREFIX == b"\x00"
    assert NODE_PREFIX == b"\x01"
    assert HASH_BYTES == 32
    assert EMPTY_ROOT == sha256(b"").digest()
    assert leaf_hash(b"x") == sha256(b"\x00x").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


def test_split_point():
    assert [split_point(n) for n in range(2, 10)] == [1, 2, 2, 4, 4, 4, 4, 8]
    with pytest.raises(ValueError, match="requires n >= 2"):
        split_point(1)


# --- published vectors --------------------------------------------------------


def test_reference_tree_roots_and_nodes():
    data = load("rfc6962_merkle_tree_hash.json")
    leaves = unhex(data["leaves_hex"])
    assert [leaf_hash(x) for x in leaves] == unhex(data["leaf_hashes_hex"])
    for size, root in data["roots_by_tree_size"].items():
        assert root_of(leaves[: int(size)]).hex() == root
        assert ref_mth(leaves[: int(size)]).hex() == root
    levels = data["complete_subtree_hashes_by_level"]["levels"]
    frontier = Frontier()
    seen = {}
    for leaf in leaves:
        for level, index, node in frontier.append(leaf_hash(leaf)):
            seen[(level, index)] = node.hex()
        assert frontier.root().hex() == data["roots_by_tree_size"][str(frontier.size)]
    assert seen == {(k, i): h for k, row in enumerate(levels) for i, h in enumerate(row)}


INCLUSION_CASES = load("rfc6962_inclusion_proofs.json")["cases"]
CONSISTENCY_CASES = load("rfc6962_consistency_proofs.json")["cases"]


@pytest.mark.parametrize("case", INCLUSION_CASES, ids=lambda c: c["testdata_file"])
def test_inclusion_vectors(case):
    args = (
        bytes.fromhex(case["leafHash"]),
        case["leafIdx"],
        case["treeSize"],
        unhex(case["proof"]),
        bytes.fromhex(case["root"]),
    )
    if case["wantErr"]:
        with pytest.raises(InvalidProof):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("case", CONSISTENCY_CASES, ids=lambda c: c["testdata_file"])
def test_consistency_vectors(case):
    args = (
        case["size1"],
        case["size2"],
        bytes.fromhex(case["root1"]),
        bytes.fromhex(case["root2"]),
        unhex(case["proof"]),
    )
    if case["wantErr"]:
        with pytest.raises(InvalidProof):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_vector_counts_cover_tampered_cases():
    assert sum(c["wantErr"] for c in INCLUSION_CASES) == 92
    assert sum(c["wantErr"] for c in CONSISTENCY_CASES) == 92


def test_derived_all_proofs_are_built_and_verified():
    data = load("rfc6962_derived_all_proofs_n8.json")
    leaves = unhex(load("rfc6962_merkle_tree_hash.json")["leaves_hex"])

    def source(start, end):
        return root_of(leaves[start:end])

    for case in data["inclusion"]:
        proof = unhex(case["proof"])
        assert inclusion_proof(case["leafIdx"], case["treeSize"], source) == proof
        verify_inclusion(
            bytes.fromhex(case["leafHash"]), case["leafIdx"], case["treeSize"], proof, bytes.fromhex(case["root"])
        )
    for case in data["consistency"]:
        proof = unhex(case["proof"])
        assert consistency_proof(case["size1"], case["size2"], source) == proof
        verify_consistency(
            case["size1"], case["size2"], bytes.fromhex(case["root1"]), bytes.fromhex(case["root2"]), proof
        )
    assert len(data["inclusion"]) == 36 and len(data["consistency"]) == 36


def test_traps_named_in_the_vectors_readme():
    # Empty root and leaf must not verify (32-byte hashes are insisted on).
    with pytest.raises(InvalidProof, match="leaf hash is 0 bytes, want 32"):
        verify_inclusion(b"", 0, 1, [], b"")
    # A consistency proof from size 0 is refused, even 0 -> 0.
    with pytest.raises(InvalidProof, match="from size 0"):
        verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    # From a power of two the old root is not in the proof.
    proof = consistency_proof(4, 8, subtree)
    assert subtree(0, 4) not in proof
    verify_consistency(4, 8, subtree(0, 4), subtree(0, 8), proof)
    with pytest.raises(InvalidProof, match="wrong proof size 2, want 1"):
        verify_consistency(4, 8, subtree(0, 4), subtree(0, 8), [subtree(0, 4), *proof])


def test_errors_carry_the_numbers():
    proof = inclusion_proof(3, 8, subtree)
    with pytest.raises(InvalidProof, match="wrong proof size 2, want 3"):
        verify_inclusion(leaf_hash(LEAVES[3]), 3, 8, proof[:2], subtree(0, 8))
    with pytest.raises(InvalidProof, match="index 8 is not in a tree of size 8"):
        verify_inclusion(leaf_hash(LEAVES[3]), 8, 8, proof, subtree(0, 8))
    with pytest.raises(InvalidProof, match="proof element 1 is 31 bytes"):
        verify_inclusion(leaf_hash(LEAVES[3]), 3, 8, [proof[0], proof[1][:31], proof[2]], subtree(0, 8))


def test_builders_state_preconditions():
    with pytest.raises(ValueError, match="index 5 in size 5: requires 0 <= index < size"):
        inclusion_proof(5, 5, subtree)
    with pytest.raises(ValueError, match="from size 0 to 3: requires 0 < first <= second"):
        consistency_proof(0, 3, subtree)
    with pytest.raises(ValueError, match="from size 4 to 3"):
        consistency_proof(4, 3, subtree)
    assert consistency_proof(3, 3, subtree) == []


# --- cross-checks against the reference ----------------------------------------


def test_every_proof_up_to_max_leaves_verifies():
    roots = [None] + [subtree(0, n) for n in range(1, MAX_LEAVES + 1)]
    hashes = [leaf_hash(x) for x in LEAVES]
    for size in range(1, MAX_LEAVES + 1):
        for index in range(size):
            source, _ = recording(size)
            verify_inclusion(hashes[index], index, size, inclusion_proof(index, size, source), roots[size])
        for first in range(1, size + 1):
            source, _ = recording(size)
            verify_consistency(first, size, roots[first], roots[size], consistency_proof(first, size, source))


def test_builders_match_reference_exhaustively_for_small_trees():
    for size in range(1, 40):
        d = LEAVES[:size]
        for index in range(size):
            assert inclusion_proof(index, size, subtree) == ref_path(index, d)
        for first in range(1, size + 1):
            assert consistency_proof(first, size, subtree) == ref_proof(first, d)


def flip(data, position):
    changed = bytearray(data)
    changed[position % len(changed)] ^= 1 << (position % 8)
    return bytes(changed)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_inclusion_matches_reference_and_any_changed_byte_fails(data):
    size = data.draw(st.integers(1, MAX_LEAVES), label="size")
    index = data.draw(st.integers(0, size - 1), label="index")
    source, asked = recording(size)
    proof = inclusion_proof(index, size, source)
    assert proof == ref_path(index, LEAVES[:size])
    assert sum(1 for s, e in asked if e == size and (e - s) & (e - s - 1)) <= 1
    leaf, root = leaf_hash(LEAVES[index]), subtree(0, size)
    verify_inclusion(leaf, index, size, proof, root)
    position = data.draw(st.integers(0, 10_000), label="position")
    target = data.draw(st.sampled_from(["proof", "root", "leaf"] if proof else ["root", "leaf"]))
    if target == "proof":
        element = position % len(proof)
        proof = proof[:element] + [flip(proof[element], position // len(proof))] + proof[element + 1 :]
    elif target == "root":
        root = flip(root, position)
    else:
        leaf = flip(leaf, position)
    with pytest.raises(InvalidProof):
        verify_inclusion(leaf, index, size, proof, root)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_consistency_matches_reference_and_any_changed_byte_fails(data):
    second = data.draw(st.integers(2, MAX_LEAVES), label="second")
    first = data.draw(st.integers(1, second - 1), label="first")
    source, asked = recording(second)
    proof = consistency_proof(first, second, source)
    assert proof == ref_proof(first, LEAVES[:second])
    assert sum(1 for s, e in asked if e == second and (e - s) & (e - s - 1)) <= 1
    roots = [subtree(0, first), subtree(0, second)]
    verify_consistency(first, second, *roots, proof)
    position = data.draw(st.integers(0, 10_000), label="position")
    target = data.draw(st.sampled_from(["proof", "first root", "second root"]))
    if target == "proof":
        element = position % len(proof)
        proof = proof[:element] + [flip(proof[element], position // len(proof))] + proof[element + 1 :]
    else:
        which = 0 if target == "first root" else 1
        roots[which] = flip(roots[which], position)
    with pytest.raises(InvalidProof):
        verify_consistency(first, second, *roots, proof)


def counting(nodes):
    """A complete(level, index) source over stored nodes that records its reads."""
    reads = []

    def complete(level, index):
        reads.append((level, index))
        return nodes[(level, index)]

    return complete, reads


def build_nodes(size):
    frontier = Frontier()
    nodes = {}
    for leaf in LEAVES[:size]:
        for level, index, node in frontier.append(leaf_hash(leaf)):
            nodes[(level, index)] = node
    return frontier, nodes


def test_frontier_nodes_and_range_hashes_match_reference_for_every_range():
    size = 100
    frontier, nodes = build_nodes(size)
    assert frontier.size == size and frontier.root() == subtree(0, size)
    assert set(nodes) == {(k, i) for k in range(8) for i in range(size >> k)}
    for (level, index), node in nodes.items():
        assert node == subtree(index << level, (index + 1) << level)
    for start in range(size):
        for end in range(start + 1, size + 1):
            top = 1 << ((end - start).bit_length() - 1)
            complete, reads = counting(nodes)
            if start % top:
                with pytest.raises(ValueError, match="not aligned"):
                    range_hash_from_complete(start, end, complete)
                continue
            assert range_hash_from_complete(start, end, complete) == subtree(start, end)
            assert len(reads) == (end - start).bit_count()


def test_frontier_from_nodes_reads_only_the_right_edge_and_continues():
    _, nodes = build_nodes(MAX_LEAVES)
    assert Frontier.from_nodes(0, lambda level, index: nodes[(level, index)]).root() == EMPTY_ROOT
    for size in range(1, 80):
        complete, reads = counting(nodes)
        frontier = Frontier.from_nodes(size, complete)
        assert len(reads) == size.bit_count()
        assert frontier.size == size and frontier.root() == subtree(0, size)
        completed = frontier.append(leaf_hash(LEAVES[size]))
        assert frontier.root() == subtree(0, size + 1)
        assert completed == [(lv, ix, nodes[(lv, ix)]) for lv, ix, _ in completed]
        assert completed[0][:2] == (0, size)


def test_database_style_proofs_from_stored_nodes():
    size = 77
    _, nodes = build_nodes(size)

    def source(start, end):
        return range_hash_from_complete(start, end, lambda level, index: nodes[(level, index)])

    for index in range(size):
        assert inclusion_proof(index, size, source) == inclusion_proof(index, size, subtree)
    for first in range(1, size + 1):
        assert consistency_proof(first, size, source) == consistency_proof(first, size, subtree)


def test_frontier_refuses_wrong_sized_hashes():
    with pytest.raises(ValueError, match="31 bytes"):
        Frontier().append(b"x" * 31)
    with pytest.raises(ValueError, match="31 bytes"):
        Frontier().push(b"x" * 31)
