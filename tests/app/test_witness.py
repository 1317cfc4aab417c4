"""signing witness: the C2SP tlog-witness rules, status codes and persistence."""

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.merkle import consistency_proof, root_of
from crypto.note import (
    AddCheckpoint,
    Checkpoint,
    Verifier,
    log_verifier,
    public_bytes,
    sign_checkpoint,
    split_note,
    verify_cosignatures,
)
from signing.witness import Witness, create_witness_app, vkey

ORIGIN = "petitions.example.org/save-the-pier"
NAME = "witness.example/w1"


class Log:
    """A C2SP log in miniature: leaves, signed checkpoints, consistency proofs."""

    def __init__(self, origin=ORIGIN, key=None):
        self.key = key or Ed25519PrivateKey.generate()
        self.origin = origin
        self.leaves = []

    @property
    def vkey(self):
        return log_verifier(self.origin, public_bytes(self.key)).vkey

    def grow(self, n):
        self.leaves += [f"leaf {len(self.leaves) + i}".encode() for i in range(n)]

    def note(self, size=None, leaves=None):
        leaves = self.leaves if leaves is None else leaves
        size = len(leaves) if size is None else size
        return sign_checkpoint(self.key, Checkpoint(self.origin, size, root_of(leaves[:size])))

    def request(self, old, size=None, leaves=None):
        leaves = self.leaves if leaves is None else leaves
        size = len(leaves) if size is None else size
        proof = [] if old in (0, size) else consistency_proof(old, size, lambda a, b: root_of(leaves[a:b]))
        return AddCheckpoint(old, proof, self.note(size, leaves)).body()


@pytest.fixture
def log():
    return Log()


@pytest.fixture
def client(tmp_path, log):
    witness = Witness(str(tmp_path / "w"), NAME, [log.vkey], clock=lambda: 1700000000)
    return create_witness_app(witness).test_client()


def post(client, body):
    return client.post("/add-checkpoint", data=body)


def test_accepts_a_consistent_sequence_and_cosigns(client, log, tmp_path):
    witness_key = Verifier.from_vkey(client.get("/vkey").get_data(as_text=True))
    log.grow(3)
    response = post(client, log.request(0))
    assert response.status_code == 200, response.get_data(as_text=True)
    line = response.get_data(as_text=True)
    assert line.startswith(f"\u2014 {NAME} ") and line.endswith("\n")
    text, signatures = split_note(log.note() + line)
    assert verify_cosignatures(text, signatures, [witness_key]) == {NAME: 1700000000}
    for grow in (1, 4, 9):
        old = len(log.leaves)
        log.grow(grow)
        response = post(client, log.request(old))
        assert response.status_code == 200, response.get_data(as_text=True)
    # Resubmitting the same checkpoint is fine (same size, same root, empty proof).
    assert post(client, log.request(len(log.leaves))).status_code == 200


def test_refuses_a_rollback_with_its_size(client, log):
    log.grow(8)
    assert post(client, log.request(0)).status_code == 200
    response = post(client, log.request(0, size=5))
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "text/x.tlog.size"
    assert response.get_data(as_text=True) == "8\n"
    # Honest about its old size, but smaller: old above the checkpoint's size.
    assert post(client, AddCheckpoint(8, [], log.note(5)).body()).status_code == 400


def test_refuses_a_fork_same_size_different_root(client, log):
    log.grow(6)
    assert post(client, log.request(0)).status_code == 200
    forked = list(log.leaves)
    forked[2] = b"rewritten"
    response = post(client, log.request(6, leaves=forked))
    assert response.status_code == 409
    assert "forked" in response.get_data(as_text=True)
    # A fork that also grows fails its consistency proof.
    forked.append(b"more")
    proof = consistency_proof(6, 7, lambda a, b: root_of(forked[a:b]))
    response = post(client, AddCheckpoint(6, proof, log.note(leaves=forked)).body())
    assert response.status_code == 422


def test_refuses_a_bad_proof(client, log):
    log.grow(5)
    assert post(client, log.request(0)).status_code == 200
    log.grow(3)
    good = AddCheckpoint.parse(log.request(5))
    flipped = [bytes([good.proof[0][0] ^ 1]) + good.proof[0][1:]] + good.proof[1:]
    assert post(client, AddCheckpoint(5, flipped, good.note).body()).status_code == 422
    assert post(client, AddCheckpoint(5, good.proof[:-1], good.note).body()).status_code == 422
    assert post(client, good.body()).status_code == 200


def test_refuses_unknown_origin_and_unknown_key(client, log):
    log.grow(2)
    other = Log(origin="elsewhere.example/log")
    other.grow(2)
    assert post(client, other.request(0)).status_code == 404
    impostor = Log(key=Ed25519PrivateKey.generate())  # the right origin, the wrong key
    impostor.grow(2)
    assert post(client, impostor.request(0)).status_code == 403


@pytest.mark.parametrize(
    "body",
    [b"", b"old 1\n", b"old x\n\nnote", b"old 01\n\n", b"old 0\n\nnot a note\n", b"\xff\xfe"],
)
def test_malformed_requests_are_400(client, body):
    assert post(client, body).status_code == 400


def test_survives_restart_without_forgetting(tmp_path, log):
    state = str(tmp_path / "w")
    first = Witness(state, NAME, [log.vkey])
    log.grow(4)
    first.add_checkpoint(log.request(0))
    again = create_witness_app(Witness(state, NAME, [log.vkey])).test_client()
    assert vkey(NAME, Witness(state, NAME, []).key) == vkey(NAME, first.key)  # the same key after restart
    log.grow(1)
    response = post(again, log.request(0))
    assert response.status_code == 409 and response.get_data(as_text=True) == "4\n"
    assert post(again, log.request(4)).status_code == 200
    latest = again.get("/latest", query_string={"origin": ORIGIN}).get_data(as_text=True)
    assert latest.startswith(f"{ORIGIN}\n5\n{base64.b64encode(root_of(log.leaves)).decode()}\n")


def test_keeps_refused_checkpoints_as_evidence(tmp_path, log):
    import sqlite3

    state = tmp_path / "w"
    witness = Witness(str(state), NAME, [log.vkey])
    log.grow(3)
    witness.add_checkpoint(log.request(0))
    forked = log.leaves[:2] + [b"other"]
    client = create_witness_app(witness).test_client()
    assert post(client, log.request(3, leaves=forked)).status_code == 409
    rows = sqlite3.connect(state / "witness.db").execute("SELECT status, note FROM evidence").fetchall()
    assert rows == [(409, log.note(leaves=forked))]
