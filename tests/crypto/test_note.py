"""crypto/note.py: C2SP signed notes, checkpoints and cosignatures, checked against
the spec's own examples and the Go checksum database's note and tlog packages."""

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto import note
from crypto.errors import InvalidBundle, InvalidSignature
from crypto.merkle import consistency_proof, root_of
from crypto.note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    AddCheckpoint,
    Checkpoint,
    Verifier,
    cosign,
    log_verifier,
    open_checkpoint,
    open_note,
    public_bytes,
    sign_checkpoint,
    sign_note,
    split_note,
    verify_cosignatures,
)

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "c2sp_signed_note.json").read_text("utf-8"))
ORIGIN = "petitions.example.org/save-the-pier"


def go_seed(skey):
    """The Ed25519 seed of a Go note signer key, PRIVATE+KEY+name+hash+base64(0x01||seed)."""
    raw = base64.b64decode(skey.split("+", 4)[4])
    assert raw[0] == ALG_ED25519
    return Ed25519PrivateKey.from_private_bytes(raw[1:])


# --- the specs' and Go's own examples ----------------------------------------------


def test_go_example_is_reproduced_byte_for_byte():
    vector = VECTORS["go_signed_note"]
    key = go_seed(vector["skey"])
    verifier = Verifier("PeterNeumann", ALG_ED25519, public_bytes(key))
    assert verifier.vkey == vector["vkey"]
    assert Verifier.from_vkey(vector["vkey"]) == verifier
    signed = vector["text"] + "\n" + sign_note(key, "PeterNeumann", vector["text"]).line()
    assert signed == vector["note"]
    text, verified = open_note(vector["note"], [verifier])
    assert (text, verified) == (vector["text"], [verifier])


def test_c2sp_examples_parse():
    example = VECTORS["c2sp_signed_note_example"]
    text, signatures = split_note(example["note"])
    assert text == example["text"]  # the text may hold a blank line: the LAST one separates
    assert [s.name for s in signatures] == [example["signer"]]
    checkpoint = VECTORS["c2sp_checkpoint_example"]
    text, _ = split_note(checkpoint["note"])
    parsed = Checkpoint.parse(text)
    assert (parsed.origin, parsed.size) == (checkpoint["origin"], checkpoint["size"])
    assert base64.b64encode(parsed.root).decode() == checkpoint["root_base64"]
    assert parsed.text() == text


def test_c2sp_cosignature_example_carries_its_timestamp():
    example = VECTORS["c2sp_cosignature_example"]
    text, signatures = split_note(example["note"])
    witness = [s for s in signatures if s.name == example["witness"]][0]
    assert len(witness.signature) == 8 + 64
    assert int.from_bytes(witness.signature[:8], "big") == example["timestamp"]
    assert note.cosigned_message(text, example["timestamp"]).decode() == example["signed_message"]


def test_c2sp_add_checkpoint_example_parses_and_round_trips():
    example = VECTORS["c2sp_add_checkpoint_request"]
    request = AddCheckpoint.parse(example["body"].encode())
    assert (request.old_size, len(request.proof)) == (example["old_size"], example["proof_lines"])
    assert Checkpoint.parse(split_note(request.note)[0]).size == VECTORS["c2sp_checkpoint_example"]["size"]
    assert request.body() == example["body"].encode()


# --- our checkpoints, checked by Go -------------------------------------------------


def test_checkpoint_round_trip_and_go_verifies_it(c2spcheck):
    key = Ed25519PrivateKey.generate()
    leaves = [f"leaf {i}".encode() for i in range(7)]
    checkpoint = Checkpoint(ORIGIN, 7, root_of(leaves))
    signed = sign_checkpoint(key, checkpoint)
    log = log_verifier(ORIGIN, public_bytes(key))
    assert open_checkpoint(signed, log)[0] == checkpoint
    result = c2spcheck("open", log.vkey, stdin=signed)
    assert result.returncode == 0, result.stdout
    assert result.stdout == checkpoint.text()
    # Go refuses what we refuse.
    tampered = signed.replace("\n7\n", "\n8\n")
    assert c2spcheck("open", log.vkey, stdin=tampered).returncode == 1
    with pytest.raises(InvalidSignature):
        open_checkpoint(tampered, log)
    stranger = log_verifier(ORIGIN, public_bytes(Ed25519PrivateKey.generate()))
    assert c2spcheck("open", stranger.vkey, stdin=signed).returncode == 1
    with pytest.raises(InvalidSignature, match="no signature from a known key"):
        open_checkpoint(signed, stranger)


def test_cosignatures_verify_in_go_and_here(c2spcheck):
    log_key, w1, w2 = (Ed25519PrivateKey.generate() for _ in range(3))
    checkpoint = Checkpoint(ORIGIN, 3, root_of([b"a", b"b", b"c"]))
    signed = sign_checkpoint(log_key, checkpoint)
    text = checkpoint.text()
    lines = [cosign(w1, "witness.example/w1", text, 1679315147), cosign(w2, "witness.example/w2", text, 1700000000)]
    cosigned = signed + "".join(line.line() for line in lines)
    witnesses = [
        Verifier("witness.example/w1", ALG_COSIGNATURE_V1, public_bytes(w1)),
        Verifier("witness.example/w2", ALG_COSIGNATURE_V1, public_bytes(w2)),
    ]
    log = log_verifier(ORIGIN, public_bytes(log_key))
    _, signatures = open_checkpoint(cosigned, log)
    confirmed = verify_cosignatures(text, signatures, witnesses)
    assert confirmed == {"witness.example/w1": 1679315147, "witness.example/w2": 1700000000}
    result = c2spcheck("open", log.vkey, *(w.vkey for w in witnesses), stdin=cosigned)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-2:] == [
        "cosigned witness.example/w1 1679315147",
        "cosigned witness.example/w2 1700000000",
    ]
    # A cosignature moved onto another checkpoint fails, here and in Go.
    other = Checkpoint(ORIGIN, 4, root_of([b"a", b"b", b"c", b"d"]))
    moved = sign_checkpoint(log_key, other) + lines[0].line()
    _, signatures = open_checkpoint(moved, log)
    with pytest.raises(InvalidSignature, match="witness.example/w1 does not verify"):
        verify_cosignatures(other.text(), signatures, witnesses)
    assert c2spcheck("open", log.vkey, witnesses[0].vkey, stdin=moved).returncode == 1
    # Unknown witnesses are ignored, as the spec asks.
    assert verify_cosignatures(text, split_note(cosigned)[1], witnesses[1:]) == {"witness.example/w2": 1700000000}


def test_go_tlog_checks_our_consistency_proofs(c2spcheck):
    leaves = [f"leaf {i}".encode() for i in range(13)]

    def b64(h):
        return base64.b64encode(h).decode()

    for old, new in ((1, 13), (5, 13), (8, 13), (12, 13), (7, 7)):
        proof = consistency_proof(old, new, lambda start, end: root_of(leaves[start:end]))
        result = c2spcheck(
            "consistency", str(old), b64(root_of(leaves[:old])), str(new), b64(root_of(leaves[:new])), *map(b64, proof)
        )
        assert result.returncode == 0, (old, new, result.stdout)
    proof = consistency_proof(5, 13, lambda start, end: root_of(leaves[start:end]))
    forked = root_of(leaves[:4] + [b"forged"])
    result = c2spcheck("consistency", "5", b64(forked), "13", b64(root_of(leaves)), *map(b64, proof))
    assert result.returncode == 1


# --- malformed input ---------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("no signatures\n", "blank line"),
        ("text\n\n", "at least one signature line"),
        ("text\n\n- name AAAAAAAA\n", "em dash"),
        ("text\n\n\u2014 na+me AAAAAAAA\n", "names its key"),
        ("text\n\n\u2014 name !!!\n", "not base64"),
        ("text\n\n\u2014 name AAAA\n", "too short"),
        ("te\x01xt\n\n\u2014 name AAAAAAAA\n", "control characters"),
        ("text\n\n\u2014 name AAAAAAAA", "ends with a newline"),
    ],
)
def test_malformed_notes(text, message):
    with pytest.raises(InvalidBundle, match=message):
        split_note(text)


@pytest.mark.parametrize(
    "text",
    [
        "origin\n7\n",
        "origin\n07\nAAAA\n",
        "origin\n7\nnot base64!\n",
        "origin\n7\nAAAA\n",
        "o\n1\n" + "A" * 44 + "\nx\n",
    ],
)
def test_malformed_checkpoints(text):
    with pytest.raises(InvalidBundle):
        Checkpoint.parse(text)


def test_malformed_vkeys():
    good = Verifier("w", ALG_COSIGNATURE_V1, bytes(32)).vkey
    for bad in ("w+zz+AA", good.replace("+", "-"), good[:-4] + "AAAE", "w+00000000+" + good.split("+", 2)[2]):
        with pytest.raises(InvalidBundle):
            Verifier.from_vkey(bad)
