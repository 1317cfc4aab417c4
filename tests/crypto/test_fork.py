"""crypto/fork.py and ``signing-audit compare`` / ``fork``: two views of a log, consistent or a checkable fork."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.audit import main
from crypto.errors import Equivocation, InvalidProof, InvalidSignature
from crypto.fork import checkpoint_view, compare, fork_proof, verify_fork_proof
from crypto.merkle import root_of
from crypto.note import Checkpoint, log_verifier, public_bytes, sign_checkpoint

ORIGIN = "petitions.example.org/save-the-pier"
KEY = Ed25519PrivateKey.generate()
LOG = log_verifier(ORIGIN, public_bytes(KEY))
LEAVES = [f"leaf {i}".encode() for i in range(13)]
FORKED = LEAVES[:3] + [b"rewritten"] + LEAVES[4:]


def note(leaves, size):
    return sign_checkpoint(KEY, Checkpoint(ORIGIN, size, root_of(leaves[:size])))


def view(leaves, size):
    return checkpoint_view(note(leaves, size), LOG)


def subtree_of(leaves):
    return lambda start, end: root_of(leaves[start:end])


def test_consistent_views():
    for small, large in ((3, 13), (4, 13), (8, 13), (13, 13), (0, 5)):
        compare(view(LEAVES, small), view(LEAVES, large), subtree_of(LEAVES))
    with pytest.raises(InvalidProof, match="give the larger log's bundle or a consistency proof"):
        compare(view(LEAVES, 3), view(LEAVES, 13))


@pytest.mark.parametrize("small, large", [(13, 13), (5, 13), (4, 13), (8, 9)])
def test_fork_proof_is_printed_and_checks(small, large):
    a, b = view(LEAVES, small), view(FORKED, large)
    with pytest.raises(Equivocation) as info:
        compare(b, a, subtree_of(FORKED))
    document = json.loads(json.dumps(fork_proof(LOG.vkey, a, b, info.value.evidence)))
    assert verify_fork_proof(document).startswith("FORK: the log key petitions.example.org/save-the-pier signed")


def test_a_fork_proof_that_proves_nothing_is_refused():
    a, b = view(LEAVES, 5), view(FORKED, 13)
    with pytest.raises(Equivocation) as info:
        compare(a, b, subtree_of(FORKED))
    good = fork_proof(LOG.vkey, a, b, info.value.evidence)
    honest = fork_proof(LOG.vkey, view(LEAVES, 5), view(LEAVES, 13), info.value.evidence)
    with pytest.raises(InvalidProof):
        verify_fork_proof(honest)  # the nodes are the forked tree's, not the honest one's
    stranger = Ed25519PrivateKey.generate()
    other = sign_checkpoint(stranger, Checkpoint(ORIGIN, 13, b"\0" * 32))
    forged = dict(good, statements=[good["statements"][0], other])
    with pytest.raises(InvalidSignature):
        verify_fork_proof(forged)
    with pytest.raises(InvalidProof):
        verify_fork_proof(dict(good, proof=good["proof"][:-1]))
    same = fork_proof(LOG.vkey, view(LEAVES, 13), view(LEAVES, 13), [])
    with pytest.raises(InvalidProof, match="no fork"):
        verify_fork_proof(same)


def test_cli_compare_and_fork(tmp_path, capsys):
    honest, forked = tmp_path / "council.txt", tmp_path / "signers.txt"
    honest.write_text(note(LEAVES, 13))
    forked.write_text(note(FORKED, 13))
    assert main(["compare", "--vkey", LOG.vkey, str(honest), str(honest)]) == 0
    assert "OK: consistent" in capsys.readouterr().out
    assert main(["compare", "--vkey", LOG.vkey, str(honest), str(forked)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("FAIL: fork: two checkpoints of size 13 with different roots")
    proof = tmp_path / "fork.json"
    proof.write_text(out[out.index("{") :])
    assert main(["fork", str(proof)]) == 0
    assert "OK: this fork proof holds. FORK:" in capsys.readouterr().out
    assert main(["compare", str(honest), str(forked)]) == 1
    assert "give the log's --vkey" in capsys.readouterr().out
