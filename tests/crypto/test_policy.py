"""crypto/policy.py and ``signing-audit checkpoint``: trusted once a quorum of known witnesses cosigned."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from crypto.audit import main
from crypto.errors import InvalidBundle, InvalidSignature
from crypto.merkle import root_of
from crypto.note import ALG_COSIGNATURE_V1, Checkpoint, Verifier, cosign, log_verifier, public_bytes, sign_checkpoint
from crypto.policy import Policy, check_checkpoint, parse_policy

ORIGIN = "petitions.example.org/save-the-pier"
LOG_KEY = Ed25519PrivateKey.generate()
LOG = log_verifier(ORIGIN, public_bytes(LOG_KEY))
WITNESS_KEYS = [Ed25519PrivateKey.generate() for _ in range(3)]
WITNESSES = [Verifier(f"w{i}.example/w", ALG_COSIGNATURE_V1, public_bytes(k)) for i, k in enumerate(WITNESS_KEYS)]
CHECKPOINT = Checkpoint(ORIGIN, 3, root_of([b"a", b"b", b"c"]))


def cosigned(*which):
    text = CHECKPOINT.text()
    lines = "".join(cosign(WITNESS_KEYS[i], WITNESSES[i].name, text, 1700000000 + i).line() for i in which)
    return sign_checkpoint(LOG_KEY, CHECKPOINT) + lines


def test_quorum_met_or_not():
    policy = Policy(tuple(WITNESSES), 2)
    checkpoint, confirmed = check_checkpoint(cosigned(0, 2), LOG, policy)
    assert checkpoint == CHECKPOINT and set(confirmed) == {"w0.example/w", "w2.example/w"}
    with pytest.raises(InvalidSignature, match="1 of the policy's 3 witnesses cosigned .* asks for 2"):
        check_checkpoint(cosigned(1), LOG, policy)
    # A witness outside the policy does not count.
    with pytest.raises(InvalidSignature):
        check_checkpoint(cosigned(0, 1), LOG, Policy((WITNESSES[0], WITNESSES[2]), 2))


def test_policy_file():
    text = f"# ours\nlog {LOG.vkey}\nwitness {WITNESSES[0].vkey}\nwitness {WITNESSES[1].vkey}\nquorum 1\n"
    policy = parse_policy(text)
    assert (policy.log, policy.witnesses, policy.quorum) == (LOG, tuple(WITNESSES[:2]), 1)
    assert parse_policy(f"witness {WITNESSES[0].vkey}\n").quorum == 1  # default: all
    for bad, message in (
        ("quorum 3\n", "quorum 3 is not between 0 and the 0 witnesses"),
        ("witness nonsense\n", "policy line 1"),
        ("frobnicate 1\n", "policy line 1"),
        (f"witness {LOG.vkey}\n", "cosignature/v1 keys"),
    ):
        with pytest.raises(InvalidBundle, match=message):
            parse_policy(bad)


def test_cli_checkpoint(tmp_path, capsys):
    note = tmp_path / "checkpoint.txt"
    note.write_text(cosigned(0, 1))
    policy = tmp_path / "policy.txt"
    policy.write_text(f"log {LOG.vkey}\n" + "".join(f"witness {w.vkey}\n" for w in WITNESSES) + "quorum 2\n")
    assert main(["checkpoint", "--policy", str(policy), str(note)]) == 0
    out = capsys.readouterr().out
    assert "2 of 3 policy witnesses cosigned (quorum 2)" in out and "cosigned by witness w1.example/w" in out
    args = ["checkpoint", "--vkey", LOG.vkey, *sum((["--witness", w.vkey] for w in WITNESSES), []), str(note)]
    assert main(args) == 1
    assert "2 of the policy's 3 witnesses cosigned" in capsys.readouterr().out
