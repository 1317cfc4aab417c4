"""crypto/audit.py: offline bundle verification, receipts, and the signing-audit command."""

import io
import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import crypto.audit as audit
from crypto.audit import (
    BUNDLE_FORMAT,
    PROOF_FORMAT,
    ReceiptNotFound,
    main,
    read_lines,
    verify_bundle,
    verify_receipt,
    verify_receipt_proof,
)
from crypto.errors import Equivocation, InvalidBundle, InvalidProof, InvalidReceipt, InvalidSignature
from crypto.fork import verify_fork_proof
from crypto.leaves import signature_leaf, withdrawal_leaf
from crypto.merkle import inclusion_proof, root_of
from crypto.receipts import new_receipt, parse_receipt, receipt_digest
from crypto.treehead import TreeHead, key_id, sign_head

PROJECT = Path(__file__).resolve().parents[2]
PETITION = "save-the-pier"
DAY = date(2026, 11, 29)
RECEIPT_A = "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YQ"


def tag(name):
    return sha256(name.encode()).digest()


class Log:
    """Builds a bundle the way a server would, including a lying one: no rule is enforced here."""

    def __init__(self):
        self.key = Ed25519PrivateKey.generate()
        self.public = self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.leaves = []
        self.heads = []
        self.count = 0

    def sign(self, person, email=None, channel="online", receipt=None):
        """Append a signature leaf as the server would: no person tag when there is an email tag,
        a receipt digest for every online signature and none for paper."""
        if receipt is None and channel == "online":
            receipt = os.urandom(32)
        email_tag = None if email is None else tag("email:" + email)
        person_tag = None if email_tag is not None else tag("person:" + person)
        self.leaves.append(signature_leaf(channel, person_tag, email_tag, receipt, DAY))
        self.count += 1
        return len(self.leaves) - 1

    def withdraw(self, of, reason="signer"):
        self.leaves.append(withdrawal_leaf(of, reason, DAY))
        self.count -= 1
        return len(self.leaves) - 1

    def head(self, count=None, leaves=None):
        leaves = self.leaves if leaves is None else leaves
        head = TreeHead(
            petition=PETITION,
            size=len(leaves),
            root=root_of(leaves),
            count=self.count if count is None else count,
            time=f"2026-11-29T18:{len(self.heads):02d}Z",
        )
        self.heads.append((head, sign_head(self.key, head)))
        return head

    def header(self):
        return {
            "format": BUNDLE_FORMAT,
            "petition": PETITION,
            "public_key": self.public.hex(),
            "key_id": key_id(self.public),
        }

    def lines(self, leaves=None):
        out = [json.dumps(self.header()).encode() + b"\n"]
        for head, signature in self.heads:
            out.append(json.dumps({"head": head.to_dict(), "signature": signature.hex()}).encode() + b"\n")
        return out + [leaf + b"\n" for leaf in (self.leaves if leaves is None else leaves)]


def simple_log(signers=8, per_head=4):
    log = Log()
    for i in range(signers):
        log.sign(f"p{i}", f"e{i}")
        if (i + 1) % per_head == 0:
            log.head()
    return log


def n_head_lines(log):
    return 1 + len(log.heads)


def expect(exc, message, lines):
    with pytest.raises(exc) as info:
        verify_bundle(lines)
    assert message in str(info.value), str(info.value)
    return str(info.value)


# --- happy path ------------------------------------------------------------------


def build_happy_log():
    log = Log()
    receipts = {}
    for name in ["ann", "bob", "cat"]:
        receipts[name] = new_receipt()
        log.sign(name, name + "@x", receipt=receipt_digest(parse_receipt(receipts[name])))
    paper_dee = log.sign("dee", channel="paper")
    log.sign("eve", channel="paper")
    log.head()  # size 5, count 5
    # Batch: Dee signs online; her paper signature is superseded (withdrawal first).
    log.withdraw(paper_dee, "superseded")
    receipts["dee"] = new_receipt()
    log.sign("dee", "dee@x", receipt=receipt_digest(parse_receipt(receipts["dee"])))
    # Bob withdraws; another "ann" with a different email signs (the log cannot tell).
    log.withdraw(1)
    log.sign("ann", "ann2@x")
    log.head()  # size 9, count 5
    # Batch: online first, then the superseding withdrawal of Eve's paper signature.
    log.sign("eve", "eve@x")
    log.withdraw(4, "superseded")
    log.head()  # size 11, count 5
    return log, receipts


def test_happy_path_report():
    log, _ = build_happy_log()
    report = verify_bundle(log.lines())
    assert report.petition == PETITION
    assert report.key_id == key_id(log.public)
    assert (report.size, report.count, report.heads) == (11, 5, 3)
    assert (report.online, report.paper, report.withdrawals) == (5, 0, 3)
    # Online signatures with an email tag publish no person tag, so the log
    # cannot say how many share a name and postcode: no such figure.
    assert not hasattr(report, "person_collisions")
    assert report.latest == log.heads[-1][0]
    # Lines without their "\n", and a last line without one, are fine too.
    verify_bundle([line.rstrip(b"\n") for line in log.lines()])


def test_empty_log_with_a_head_at_size_zero():
    log = Log()
    log.head()
    report = verify_bundle(log.lines())
    assert (report.size, report.count, report.heads) == (0, 0, 1)


def test_progress_is_reported(monkeypatch):
    monkeypatch.setattr(audit, "PROGRESS_EVERY_LEAVES", 3)
    log = simple_log(signers=10, per_head=5)
    seen = []
    verify_bundle(log.lines(), progress=seen.append)
    assert seen == [3, 6, 9]


def test_read_lines_splits_across_chunks(monkeypatch):
    monkeypatch.setattr(audit, "READ_CHUNK_BYTES", 7)
    log, _ = build_happy_log()
    data = b"".join(log.lines())
    assert list(read_lines(io.BytesIO(data))) == [line[:-1] for line in log.lines()]
    assert list(read_lines(io.BytesIO(data[:-1]))) == [line[:-1] for line in log.lines()]
    verify_bundle(read_lines(io.BytesIO(data)))


# --- tampering -------------------------------------------------------------------


def test_changed_leaf():
    log = simple_log()
    lines = log.lines()
    first_leaf = n_head_lines(log)
    lines[first_leaf + 5] = signature_leaf("online", None, tag("email:m"), tag("r:m"), DAY) + b"\n"
    expect(InvalidProof, "leaves 4..7 were altered, or the head at size 8 is inconsistent", lines)
    lines = log.lines()
    lines[first_leaf + 1] = lines[first_leaf + 2]
    expect(InvalidProof, "root of the head at size 4 does not match leaves 0..3", lines)


def test_removed_leaf():
    log = simple_log()
    expect(InvalidBundle, "bundle has 7 leaves, but the last head has size 8", log.lines()[:-1])
    lines = log.lines()
    del lines[n_head_lines(log) + 2]
    expect(InvalidProof, "root of the head at size 4 does not match leaves 0..3", lines)


def test_extra_leaf():
    log = simple_log()
    extra = signature_leaf("online", None, tag("email:x"), tag("r:x"), DAY) + b"\n"
    expect(InvalidBundle, "bundle has 9 leaves, but the last head has size 8", log.lines() + [extra])


def test_reordered_pair():
    log = simple_log()
    lines = log.lines()
    i = n_head_lines(log) + 2
    lines[i], lines[i + 1] = lines[i + 1], lines[i]
    expect(InvalidProof, "root of the head at size 4 does not match leaves 0..3", lines)


def test_forged_head_signature():
    log = simple_log()
    head, signature = log.heads[1]
    forged = Ed25519PrivateKey.generate()
    log.heads[1] = (head, sign_head(forged, head))
    expect(InvalidSignature, "signature of the tree head at size 8 does not verify", log.lines())
    log.heads[1] = (TreeHead(PETITION, head.size, head.root, head.count - 1, head.time), signature)
    expect(InvalidSignature, "signature of the tree head at size 8 does not verify", log.lines())


def test_head_with_wrong_count():
    log = simple_log(signers=4, per_head=4)
    log.sign("z", "z")
    log.head(count=4)
    expect(InvalidBundle, "head at size 5 says count 4, but its leaves give 5", log.lines())


def test_later_head_inconsistent_with_earlier():
    log = simple_log(signers=4, per_head=4)
    log.sign("q", "q")
    log.sign("r", "r")
    forked = list(log.leaves)
    forked[1] = signature_leaf("online", None, tag("email:fork"), tag("r:fork"), DAY)
    log.head(leaves=forked)
    message = expect(
        InvalidProof, "head at size 6 is inconsistent with the log that earlier heads commit to", log.lines()
    )
    assert "(size 4)" in message
    # With the forked leaves instead, the earlier head no longer matches.
    expect(InvalidProof, "root of the head at size 4 does not match leaves 0..3", log.lines(leaves=forked))


def test_heads_out_of_order_or_for_another_petition():
    log = simple_log()
    log.heads.reverse()
    expect(InvalidBundle, "head line 2 has size 4, not above the previous head's 8", log.lines())
    log = simple_log()
    head, _ = log.heads[0]
    other = TreeHead("another", head.size, head.root, head.count, head.time)
    log.heads[0] = (other, sign_head(log.key, other))
    expect(InvalidBundle, "head line 1 (size 4) is for petition 'another'", log.lines())


def test_injected_leaf_repeating_an_email_tag():
    log = simple_log(signers=4, per_head=4)
    log.sign("someone-else", "e2")
    log.sign("x", "x")
    log.head()
    expect(
        InvalidBundle,
        "at the head of size 6, leaves 2 and 4 are both active signatures with the same email tag",
        log.lines(),
    )


def test_same_email_after_withdrawal_is_fine():
    log = simple_log(signers=4, per_head=4)
    log.withdraw(2)
    log.sign("p2", "e2")
    log.head()
    assert verify_bundle(log.lines()).count == 4


def no_email_log(signers=4):
    """A petition that collects no email: online signatures publish person tags."""
    log = Log()
    for i in range(signers):
        log.sign(f"p{i}")
    log.head()
    return log


def test_paper_sharing_person_tag_with_active_online_without_email():
    log = no_email_log()
    log.sign("p3", channel="paper")
    log.head()
    expect(
        InvalidBundle,
        "at the head of size 5, leaf 3 (an online signature without an email tag) shares its person tag "
        "with active signature leaf 4",
        log.lines(),
    )


def test_paper_sharing_person_tag_with_active_paper():
    log = simple_log(signers=4, per_head=4)
    log.sign("dee", channel="paper")
    log.sign("eve", channel="paper")
    log.sign("dee", channel="paper")
    log.head()
    expect(
        InvalidBundle,
        "at the head of size 7, leaf 4 (a paper signature) shares its person tag with active signature leaf 6",
        log.lines(),
    )


def test_online_without_email_sharing_person_tag():
    log = no_email_log()
    log.sign("p1")
    log.head()
    expect(InvalidBundle, "leaf 1 (an online signature without an email tag) shares its person tag", log.lines())


def test_person_tag_free_again_after_withdrawal():
    log = no_email_log()
    log.withdraw(1)
    log.sign("p1")
    paper = log.sign("dee", channel="paper")
    log.head()
    log.withdraw(paper, "superseded")
    log.sign("dee")
    log.head()
    report = verify_bundle(log.lines())
    assert (report.count, report.online, report.paper, report.withdrawals) == (5, 5, 0, 2)


def test_online_with_email_publishes_no_person_tag_so_cannot_clash():
    # The same person on paper and online with an email: the server supersedes
    # the paper one, but the log cannot show the pair. Two online signatures of
    # one person with different emails are likewise invisible (and allowed).
    log = Log()
    log.sign("dee", channel="paper")
    log.sign("dee", "dee@x")
    log.sign("dee", "dee2@x")
    log.head()
    report = verify_bundle(log.lines())
    assert (report.count, report.online, report.paper) == (3, 2, 1)
    assert all(b'"person":null' in leaf for leaf in log.leaves[1:])


def signature_bytes(channel, person, email):
    """A signature leaf built by hand, so it may break the tag invariant."""
    receipt = None if channel == "paper" else "cd" * 32
    fields = {"channel": channel, "day": DAY.isoformat(), "email": email, "person": person, "receipt": receipt}
    return json.dumps({**fields, "type": "signature", "v": 1}, sort_keys=True, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    "channel, person, email, message",
    [
        ("online", "01" * 32, "ab" * 32, "leaf 4 is an online signature with an email tag that publishes a person tag"),
        ("online", None, None, "leaf 4 is a signature with neither an email tag nor a person tag"),
        ("paper", None, None, "leaf 4 is a signature with neither an email tag nor a person tag"),
        ("paper", "01" * 32, "ab" * 32, "leaf 4 is a paper signature with an email tag"),
        ("paper", None, "ab" * 32, "leaf 4 is a paper signature with an email tag"),
    ],
)
def test_leaf_breaking_the_tag_invariant_is_refused(channel, person, email, message):
    log = simple_log(signers=4, per_head=4)
    log.leaves.append(signature_bytes(channel, person, email))
    log.count += 1
    log.head()  # the server even signed it
    expect(InvalidBundle, message, log.lines())


def test_superseded_paper_in_the_same_batch_is_fine_in_either_order():
    for withdraw_first in (True, False):
        log = Log()
        paper = log.sign("dee", channel="paper")
        log.head()
        if withdraw_first:
            log.withdraw(paper, "superseded")
            log.sign("dee", "dee@x")
        else:
            log.sign("dee", "dee@x")
            log.withdraw(paper, "superseded")
        log.head()
        report = verify_bundle(log.lines())
        assert (report.count, report.online, report.paper) == (1, 1, 0)


def test_paper_and_online_sharing_person_tag_across_a_head_is_caught():
    log = Log()
    paper = log.sign("dee", channel="paper")
    log.sign("dee")  # online without email: its person tag is published
    log.head()
    log.withdraw(paper, "superseded")
    log.head()
    expect(
        InvalidBundle,
        "at the head of size 2, leaf 0 (a paper signature) shares its person tag with active signature leaf 1",
        log.lines(),
    )


def test_withdrawal_of_nonexistent_leaf():
    log = simple_log(signers=4, per_head=4)
    log.withdraw(99)
    log.head()
    expect(InvalidBundle, "leaf 4 withdraws leaf 99, which is not an earlier leaf", log.lines())


def test_withdrawal_of_itself_or_a_withdrawal():
    log = simple_log(signers=4, per_head=4)
    log.withdraw(4)
    log.head()
    expect(InvalidBundle, "leaf 4 withdraws leaf 4, which is not an earlier leaf", log.lines())
    log = simple_log(signers=4, per_head=4)
    log.withdraw(0)
    log.withdraw(4)
    log.head()
    expect(InvalidBundle, "leaf 5 withdraws leaf 4, which is a withdrawal, not a signature", log.lines())


def test_withdrawal_of_already_withdrawn_leaf():
    log = simple_log(signers=4, per_head=4)
    log.withdraw(1)
    log.withdraw(1)
    log.head()
    expect(InvalidBundle, "leaf 5 withdraws leaf 1, already withdrawn by leaf 4", log.lines())


def test_superseded_online_signature_is_refused():
    for log in (simple_log(signers=4, per_head=4), no_email_log()):
        log.withdraw(1, "superseded")
        log.head()
        expect(
            InvalidBundle,
            "leaf 4 withdraws leaf 1 as superseded, but only paper signatures are superseded",
            log.lines(),
        )


def test_non_canonical_leaf_json():
    log = simple_log(signers=4, per_head=4)
    leaf = signature_leaf("online", None, tag("email:sp"), tag("receipt"), DAY).replace(b'","day"', b'", "day"')
    log.leaves.append(leaf)
    log.count += 1
    log.head()  # the server even signed it
    expect(InvalidBundle, "leaf 4 is not the canonical JSON of a signature or withdrawal leaf", log.lines())


def test_upper_case_or_non_hex_tag():
    # The hex fields are checked a batch at a time; the leaf at fault is still named.
    for field, bad, message in (
        (b"ab", b"AB", "leaf 5 is not canonical: upper-case hex"),
        (b"ab", b"zz", "leaf 5 has a tag that is not hex"),
        (b"cd", b"CD", "leaf 5 is not canonical: upper-case hex"),  # the receipt digest
        (b"cd", b"c\\", "leaf 5 has a tag that is not hex"),
    ):
        log = simple_log(signers=4, per_head=4)
        before = signature_leaf("online", None, b"\xef" * 32, b"\xee" * 32, DAY)
        leaf = signature_leaf("online", None, b"\xab" * 32, b"\xcd" * 32, DAY).replace(field, bad, 1)
        after = signature_leaf("online", None, b"\x01" * 32, b"\x02" * 32, DAY)
        log.leaves += [before, leaf, after]
        log.count += 3
        log.head()
        expect(InvalidBundle, message, log.lines())


def test_malformed_header_and_heads():
    log = simple_log()
    lines = log.lines()
    header = log.header()
    expect(InvalidBundle, "bundle is empty", [])
    expect(InvalidBundle, "bundle has no signed tree head", lines[:1] + lines[n_head_lines(log) :])
    bad = dict(header, key_id="0" * 16)
    expect(
        InvalidBundle,
        "header key_id 0000000000000000 does not match its public key",
        [json.dumps(bad).encode()] + lines[1:],
    )
    bad = dict(header, format="countersign-bundle/v2")
    expect(InvalidBundle, "header format", [json.dumps(bad).encode()] + lines[1:])
    bad = dict(header, extra=1)
    expect(InvalidBundle, "header line must be", [json.dumps(bad).encode()] + lines[1:])
    head_line = json.loads(lines[1])
    head_line["signature"] = head_line["signature"].upper()
    expect(
        InvalidBundle,
        "head line 1: signature must be 128 lowercase hex digits",
        [lines[0], json.dumps(head_line).encode()] + lines[2:],
    )
    moved = lines[:1] + lines[2:] + [lines[1]]
    expect(InvalidBundle, "a tree head line comes after leaf 7", moved)


# --- receipts --------------------------------------------------------------------


def test_verify_receipt_counted_and_withdrawn():
    log, receipts = build_happy_log()
    result = verify_receipt(receipts["ann"], log.lines())
    assert (result.index, result.counted, result.withdrawn_by) == (0, True, None)
    assert result.included_in == (5, 9, 11)
    assert result.bundle.count == 5
    result = verify_receipt(receipts["bob"], log.lines())
    assert (result.index, result.counted, result.withdrawn_by, result.withdrawal_reason) == (1, False, 7, "signer")
    result = verify_receipt(receipts["dee"].lower().replace("-", " "), log.lines())
    assert (result.index, result.counted, result.included_in) == (6, True, (9, 11))


def test_verify_receipt_not_found_or_malformed():
    log, _ = build_happy_log()
    with pytest.raises(ReceiptNotFound, match="no signature in this bundle carries that receipt"):
        verify_receipt(new_receipt(), log.lines())
    with pytest.raises(InvalidReceipt):
        verify_receipt("not a receipt", log.lines())


def receipt_proof_document(log, index, head_number=-1):
    head, signature = log.heads[head_number]
    leaves = log.leaves[: head.size]
    proof = inclusion_proof(index, head.size, lambda start, end: root_of(leaves[start:end]))
    return {
        "format": PROOF_FORMAT,
        "petition": PETITION,
        "public_key": log.public.hex(),
        "leaf": log.leaves[index].decode(),
        "index": index,
        "head": head.to_dict(),
        "signature": signature.hex(),
        "proof": [p.hex() for p in proof],
    }


def test_receipt_proof():
    log, _ = build_happy_log()
    for index in (0, 6, 9):
        verify_receipt_proof(receipt_proof_document(log, index))
    verify_receipt_proof(receipt_proof_document(log, 2, head_number=0))


def test_receipt_proof_tampered():
    log, _ = build_happy_log()
    good = receipt_proof_document(log, 0)
    cases = [
        (dict(good, leaf=log.leaves[2].decode()), InvalidProof),
        (dict(good, index=2), InvalidProof),
        (dict(good, proof=good["proof"][:-1]), InvalidProof),
        (
            dict(
                good,
                proof=[good["proof"][0].replace(good["proof"][0][0], "0" if good["proof"][0][0] != "0" else "1", 1)]
                + good["proof"][1:],
            ),
            InvalidProof,
        ),
        (dict(good, head=dict(good["head"], count=7)), InvalidSignature),
        (dict(good, public_key=Log().public.hex()), InvalidSignature),
        (dict(good, format="countersign-receipt-proof/v0"), InvalidBundle),
        (dict(good, petition="another"), InvalidBundle),
        (dict(good, leaf=log.leaves[5].decode()), InvalidBundle),  # a withdrawal, not a signature
        (dict(good, leaf=log.leaves[0].decode() + " "), InvalidBundle),
        (dict(good, index=True), InvalidBundle),
        ({k: v for k, v in good.items() if k != "proof"}, InvalidBundle),
    ]
    for document, exc in cases:
        with pytest.raises(exc):
            verify_receipt_proof(document)


# --- command line ----------------------------------------------------------------


@pytest.fixture
def bundles(tmp_path):
    log, receipts = build_happy_log()
    good = tmp_path / "good.jsonl"
    good.write_bytes(b"".join(log.lines()))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b"".join(log.lines()[:-1]))
    proof = tmp_path / "proof.json"
    proof.write_text(json.dumps(receipt_proof_document(log, 0)))
    return good, bad, proof, receipts


def test_main_exit_codes(bundles, capsys):
    good, bad, proof, receipts = bundles
    assert main(["verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"OK: petition {PETITION}") and "counted: 5 (online 5, paper 0)" in out
    assert "same name and postcode" not in out
    assert main(["verify", str(bad)]) == 1
    assert capsys.readouterr().out == "FAIL: bundle has 10 leaves, but the last head has size 11\n"
    assert main(["receipt", receipts["bob"], str(good)]) == 0
    assert "withdrawn by leaf 7 (signer)" in capsys.readouterr().out
    assert main(["receipt", new_receipt(), str(good)]) == 1
    assert capsys.readouterr().out.startswith("FAIL: no signature in this bundle carries that receipt")
    assert main(["proof", receipts["ann"], str(proof)]) == 0
    assert "OK: your signature is leaf 0, included" in capsys.readouterr().out
    assert main(["verify", str(good.parent / "missing.jsonl")]) == 1
    assert capsys.readouterr().out.startswith("FAIL: cannot read")
    for argv in ([], ["verify"], ["frobnicate", "x"], ["receipt", "only-one-arg"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2


def test_subprocess(bundles):
    good, bad, proof, receipts = bundles

    def run(*args, stdin=None):
        return subprocess.run(
            [sys.executable, "-m", "crypto.audit", *args], cwd=PROJECT, input=stdin, capture_output=True, timeout=60
        )

    assert run("verify", str(good)).returncode == 0
    result = run("verify", "-", stdin=good.read_bytes())
    assert result.returncode == 0 and result.stdout.startswith(b"OK:")
    result = run("verify", str(bad))
    assert result.returncode == 1 and result.stdout.startswith(b"FAIL: ")
    assert run("proof", receipts["ann"], str(proof)).returncode == 0
    assert run().returncode == 2


def test_header_and_head_lines_may_use_any_key_order():
    log = simple_log()
    lines = log.lines()
    for i in range(n_head_lines(log)):
        obj = json.loads(lines[i])
        lines[i] = json.dumps(dict(reversed(list(obj.items()))), indent=None).encode() + b"\n"
    assert lines[1].startswith(b'{"signature"')
    assert verify_bundle(lines).size == 8


# --- what an independent auditor found (issue 15) ----------------------------------


def test_pinned_key_refuses_a_bundle_resigned_with_another_key(bundles, capsys):
    log, receipts = build_happy_log()
    stranger = Log()
    stranger.leaves = list(log.leaves)
    for i in range(3):
        stranger.sign("invented", f"invented{i}@x")
    stranger.count = 8
    stranger.head()
    assert verify_bundle(stranger.lines()).count == 8  # unpinned, the file's own key is taken on trust
    with pytest.raises(InvalidSignature, match=f"not the pinned key {key_id(log.public)}"):
        verify_bundle(stranger.lines(), key=log.public)
    assert verify_bundle(log.lines(), key=log.public).count == 5
    with pytest.raises(InvalidSignature, match="not the pinned key"):
        verify_receipt(receipts["ann"], stranger.lines(), key=log.public)
    good, _, proof, _ = bundles
    assert main(["verify", "--key", stranger.public.hex(), str(good)]) == 1
    assert "not the pinned key" in capsys.readouterr().out
    assert main(["verify", "--key", "12ab", str(good)]) == 1
    assert "--key must be the log's public key" in capsys.readouterr().out


def test_proof_is_tied_to_its_signer_and_its_key():
    log, receipts = build_happy_log()
    document = receipt_proof_document(log, 0)  # Ann's leaf
    verify_receipt_proof(document, receipts["ann"], log.public)
    with pytest.raises(InvalidReceipt, match="this proof is for another signature"):
        verify_receipt_proof(document, receipts["bob"])
    with pytest.raises(InvalidSignature, match="not the pinned key"):
        verify_receipt_proof(document, receipts["ann"], Log().public)


def test_head_times_go_forward_and_not_into_the_future():
    log = simple_log()
    first, signature = log.heads[0]
    second, _ = log.heads[1]
    backwards = TreeHead(PETITION, second.size, second.root, second.count, "2026-11-29T17:00Z")
    log.heads[1] = (backwards, sign_head(log.key, backwards))
    expect(InvalidBundle, "head at size 8 is dated 2026-11-29T17:00Z, before the previous head's", log.lines())
    future = TreeHead(PETITION, second.size, second.root, second.count, "2999-01-01T00:00Z")
    log.heads[1] = (future, sign_head(log.key, future))
    expect(InvalidBundle, "head at size 8 is dated 2999-01-01T00:00Z, in the future", log.lines())
    # A clock a minute or two behind the server's is fine.
    now = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
    log.heads[1] = (second, sign_head(log.key, second))
    assert verify_bundle(log.lines(), now=now).size == 8


def test_leaf_dated_after_its_head():
    log = simple_log(signers=4, per_head=4)
    log.leaves.append(signature_leaf("online", None, tag("email:late"), tag("r:late"), date(2026, 11, 30)))
    log.count += 1
    log.head()
    expect(InvalidBundle, "a leaf up to size 5 is dated 2026-11-30, after its head (2026-11-29T18:01Z)", log.lines())
    log = simple_log(signers=4, per_head=4)
    log.leaves.append(withdrawal_leaf(0, "signer", date(2026, 12, 1)))
    log.count -= 1
    log.head()
    expect(InvalidBundle, "dated 2026-12-01, after its head", log.lines())


def test_fork_inside_one_bundle_is_named_and_its_proof_checks(capsys, tmp_path):
    log = simple_log(signers=4, per_head=4)
    log.sign("q", "q")
    head = log.head()
    forked = list(log.leaves)
    forked[4] = signature_leaf("online", None, tag("email:other"), tag("r:other"), DAY)
    twin = TreeHead(PETITION, head.size, root_of(forked), head.count, head.time)
    log.heads.append((twin, sign_head(log.key, twin)))
    message = f"fork: the log key {key_id(log.public)} signed two different heads of size 5"
    with pytest.raises(Equivocation, match=message):
        verify_bundle(log.lines())
    path = tmp_path / "forked.jsonl"
    path.write_bytes(b"".join(log.lines()))
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    evidence = json.loads(out[out.index("{") :])
    assert evidence["format"] == "countersign-fork-proof/v1"
    assert {h["head"]["root"] for h in evidence["statements"]} == {head.root.hex(), twin.root.hex()}
    expected = f"FORK: the log key {log.public.hex()[:16]} signed two different tree heads of size 5"
    assert verify_fork_proof(evidence) == expected
    proof = tmp_path / "fork.json"
    proof.write_text(json.dumps(evidence))
    assert main(["fork", str(proof)]) == 0
    assert "FORK: the log key" in capsys.readouterr().out
    # The same head twice is no fork, only out of order.
    log.heads[-1] = log.heads[-2]
    expect(InvalidBundle, "head line 3 has size 5, not above the previous head's 5", log.lines())


def test_reused_receipt_digest_is_refused_by_verify():
    log = simple_log(signers=4, per_head=4)
    log.sign("again", "again@x", receipt=receipt_digest(parse_receipt(RECEIPT_A)))
    log.sign("paper-in-between", channel="paper")
    log.sign("copy", "copy@x", receipt=receipt_digest(parse_receipt(RECEIPT_A)))
    log.head()
    expect(InvalidBundle, "leaves 4 and 6 carry the same receipt", log.lines())


def test_online_leaf_needs_a_receipt_and_paper_has_none():
    log = simple_log(signers=4, per_head=4)
    log.leaves.append(signature_leaf("online", None, tag("email:nr"), None, DAY))
    log.count += 1
    log.head()
    expect(InvalidBundle, "leaf 4 is an online signature without a receipt", log.lines())
    log = simple_log(signers=4, per_head=4)
    log.leaves.append(signature_leaf("paper", tag("person:pr"), None, tag("r:pr"), DAY))
    log.count += 1
    log.head()
    expect(InvalidBundle, "leaf 4 is a paper signature with a receipt", log.lines())


def test_superseded_withdrawals_need_as_many_active_online_signatures():
    log = Log()
    paper = log.sign("dee", channel="paper")
    log.sign("eve", channel="paper")
    log.head()
    log.withdraw(paper, "superseded")  # nothing supersedes it: a quiet removal
    log.head()
    expect(
        InvalidBundle,
        "1 paper signatures are withdrawn as superseded, but only 0 online signatures are active",
        log.lines(),
    )
    # One online signature cannot supersede two paper ones.
    log = Log()
    log.sign("dee", channel="paper")
    log.sign("eve", channel="paper")
    log.head()
    log.sign("dee", "dee@x")
    log.withdraw(0, "superseded")
    log.withdraw(1, "superseded")
    log.head()
    expect(InvalidBundle, "2 paper signatures are withdrawn as superseded, but only 1 online", log.lines())
    # The closing batch supersedes for online signatures counted in earlier batches (the server
    # settles every supersede at close, so no earlier batch says which paper signer signed online).
    log = Log()
    log.sign("dee", channel="paper")
    log.sign("fay", "fay@x")
    log.head()
    log.withdraw(0, "superseded")
    log.head()
    assert verify_bundle(log.lines()).count == 1
    # An online signature withdrawn before then supersedes nothing.
    log = Log()
    log.sign("dee", channel="paper")
    online = log.sign("fay", "fay@x")
    log.head()
    log.withdraw(online, "signer")
    log.withdraw(0, "superseded")
    log.head()
    expect(InvalidBundle, "but only 0 online signatures are active", log.lines())
