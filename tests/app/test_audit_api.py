"""The audit API and the whole loop an auditor runs: fetch, verify offline."""

import dataclasses
import json
import subprocess
import sys
from datetime import timedelta

import pytest
from helpers import Signer, receipt_from

from crypto import merkle
from crypto.audit import verify_bundle, verify_receipt_proof
from crypto.leaves import parse_leaf
from crypto.treehead import TreeHead, verify_head


def signers(count):
    return [Signer(name=f"Person {chr(65 + i)} Example", email=f"person{i}@example.org") for i in range(count)]


def fetch_bundle(browser, slug="test"):
    response = browser.client.get(f"/p/{slug}/audit/bundle", buffered=True)  # closed, as a server does
    assert response.status_code == 200
    assert response.mimetype == "application/x-ndjson"
    return response.get_data()


def run_audit(tmp_path, *args, bundle=None):
    path = tmp_path / "bundle.jsonl"
    if bundle is not None:
        path.write_bytes(bundle)
    return subprocess.run(
        [sys.executable, "-m", "crypto.audit", *args, *([str(path)] if bundle is not None else [])],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_sign_publish_bundle_verifies_offline(tmp_path, browser, petition):
    codes = [receipt_from(browser.sign_and_confirm("test", s)) for s in signers(3)]
    bundle = fetch_bundle(browser)
    report = verify_bundle(bundle.splitlines())
    assert (report.size, report.count) == (3, 3)

    result = run_audit(tmp_path, "verify", bundle=bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3" in result.stdout

    receipt = run_audit(tmp_path, "receipt", codes[1], bundle=bundle)
    assert receipt.returncode == 0, receipt.stdout + receipt.stderr


def test_withdrawal_is_a_leaf_and_later_head_is_consistent(tmp_path, browser, petition):
    codes = [receipt_from(browser.sign_and_confirm("test", s)) for s in signers(3)]
    before = browser.client.get("/p/test/audit/heads").get_json()["heads"][-1]["head"]
    browser.withdraw("test", codes[0])
    after = browser.client.get("/p/test/audit/heads").get_json()["heads"][-1]["head"]
    assert (before["size"], before["count"]) == (3, 3)
    assert (after["size"], after["count"]) == (4, 2)

    proof = browser.client.get("/p/test/audit/proof/consistency?first=3&second=4").get_json()["proof"]
    merkle.verify_consistency(
        3, 4, bytes.fromhex(before["root"]), bytes.fromhex(after["root"]), [bytes.fromhex(p) for p in proof]
    )
    last_leaf = browser.client.get("/p/test/audit/leaves?start=3&end=4").get_json()["leaves"][0]
    withdrawal = parse_leaf(last_leaf.encode())
    assert withdrawal.reason == "signer"

    bundle = fetch_bundle(browser)
    assert run_audit(tmp_path, "verify", bundle=bundle).returncode == 0
    assert verify_bundle(bundle.splitlines()).count == 2


def test_served_proofs_verify_against_signed_heads(browser, petition, services):
    for signer in signers(5):
        browser.sign_and_confirm("test", signer)
    key = browser.client.get("/p/test/audit/key").get_json()
    instance = browser.client.get("/audit/key").get_json()
    assert {k: v for k, v in key.items() if k not in ("origin", "vkey")} == instance
    assert key["origin"] == "petitions.example.org/test"
    public_key = bytes.fromhex(key["public_key"])
    head_doc = browser.client.get("/p/test/audit/head/5").get_json()
    head = TreeHead.from_dict(head_doc["head"])
    verify_head(public_key, head, bytes.fromhex(head_doc["signature"]))

    leaves = browser.client.get("/p/test/audit/leaves?start=0&end=5").get_json()["leaves"]
    assert merkle.root_of([leaf.encode() for leaf in leaves]) == head.root
    for index, leaf in enumerate(leaves):
        proof = browser.client.get(f"/p/test/audit/proof/inclusion?index={index}&size=5").get_json()["proof"]
        merkle.verify_inclusion(merkle.leaf_hash(leaf.encode()), index, 5, [bytes.fromhex(p) for p in proof], head.root)


def test_leaves_carry_day_only_and_no_identity(browser, petition):
    browser.sign_and_confirm("test", Signer())
    leaf = json.loads(browser.client.get("/p/test/audit/leaves?start=0&end=1").get_json()["leaves"][0])
    assert set(leaf) == {"v", "type", "channel", "person", "email", "receipt", "day"}
    assert len(leaf["day"]) == 10


def test_receipt_proof_download_verifies(tmp_path, browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    browser.sign_and_confirm("test", signers(1)[0])
    document = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/receipt/proof").get_json()
    key = browser.client.get("/audit/key").get_json()["public_key"]
    verify_receipt_proof(document, code, bytes.fromhex(key))
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(document))
    result = subprocess.run(
        [sys.executable, "-m", "crypto.audit", "proof", "--key", key, code, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_tampered_served_bundle_fails_the_verifier(tmp_path, browser, petition):
    for signer in signers(3):
        browser.sign_and_confirm("test", signer)
    lines = fetch_bundle(browser).splitlines(keepends=True)
    lines[-2] = lines[-2].replace(b'"online"', b'"paper"')
    result = run_audit(tmp_path, "verify", bundle=b"".join(lines))
    assert result.returncode == 1
    assert "FAIL" in result.stdout + result.stderr


def test_batches_wait_for_the_interval(app, browser, petition, services):
    now = [services.clock()]
    app.extensions["countersign"] = dataclasses.replace(
        services, publish_interval=timedelta(minutes=10), clock=lambda: now[0]
    )
    # The empty head was just signed, so the interval has not passed.
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    assert "Received, waiting." in browser.check_receipt("test", code).get_data(as_text=True)
    assert browser.client.get("/p/test/audit/heads").get_json()["heads"][-1]["head"]["size"] == 0
    now[0] += timedelta(minutes=11)
    assert "Counted." in browser.check_receipt("test", code).get_data(as_text=True)
    assert browser.client.get("/p/test/audit/heads").get_json()["heads"][-1]["head"]["count"] == 1


def test_withdrawn_before_publishing_never_reaches_the_log(app, browser, petition, services):
    now = [services.clock()]
    app.extensions["countersign"] = dataclasses.replace(
        services, publish_interval=timedelta(minutes=10), clock=lambda: now[0]
    )
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    browser.withdraw("test", code)
    now[0] += timedelta(minutes=11)
    browser.sign_and_confirm("test", signers(1)[0])
    heads = browser.client.get("/p/test/audit/heads").get_json()["heads"]
    assert (heads[-1]["head"]["size"], heads[-1]["head"]["count"]) == (1, 1)


@pytest.mark.parametrize(
    "url, message",
    [
        ("/p/test/audit/leaves?start=0", "missing parameter 'end'"),
        ("/p/test/audit/leaves?start=x&end=1", "must be a whole number"),
        ("/p/test/audit/leaves?start=-1&end=1", "must be a whole number"),
        ("/p/test/audit/leaves?start=0&end=99", "the log's size"),
        ("/p/test/audit/leaves?start=1&end=1", "start < end"),
        ("/p/test/audit/proof/inclusion?index=2&size=2", "index < size"),
        ("/p/test/audit/proof/inclusion?index=0&size=0", "at least 1"),
        ("/p/test/audit/proof/consistency?first=0&second=2", "at least 1"),
        ("/p/test/audit/proof/consistency?first=2&second=1", "first <= second"),
        ("/p/test/audit/proof/consistency?first=1&second=" + "9" * 40, "whole number"),
    ],
)
def test_bad_parameters_get_a_clear_400(browser, petition, url, message):
    browser.sign_and_confirm("test", Signer())
    browser.sign_and_confirm("test", signers(1)[0])
    response = browser.client.get(url)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_unknown_petition_or_head_is_a_json_404(browser, petition):
    assert browser.client.get("/p/nope/audit/heads").status_code == 404
    response = browser.client.get("/p/test/audit/head/7")
    assert response.status_code == 404
    assert "no signed head of size 7" in response.get_json()["error"]


def test_leaf_page_size_is_bounded(browser, petition, services):
    from signing import ledger
    from signing.models import Signature

    for i in range(1001):
        Signature.create(
            petition=petition,
            person_tag=bytes(32 - len(str(i))) + str(i).encode(),
            email_tag=i.to_bytes(32, "big"),
            day="2026-11-29",
        )
    ledger.publish(services, petition, force=True)
    assert browser.client.get("/p/test/audit/leaves?start=0&end=1000").status_code == 200
    response = browser.client.get("/p/test/audit/leaves?start=0&end=1001")
    assert response.status_code == 400
    assert "at most 1000" in response.get_json()["error"]


def test_bundle_is_a_file_written_once_per_head_and_readers_are_bounded(browser, petition, instance_path):
    """A slow bundle reader holds a file, not a database snapshot; one reader per process at once."""
    browser.sign_and_confirm("test", signers(1)[0])
    first = fetch_bundle(browser)
    files = list((instance_path / "bundles").glob("*.jsonl"))
    assert len(files) == 1 and files[0].read_bytes() == first
    written = files[0].stat().st_mtime_ns
    assert fetch_bundle(browser) == first and files[0].stat().st_mtime_ns == written  # not written again

    slow = browser.client.get("/p/test/audit/bundle", buffered=False)  # still being read
    assert slow.status_code == 200
    busy = browser.client.get("/p/test/audit/bundle")
    assert busy.status_code == 503 and busy.headers["Retry-After"]
    slow.close()
    assert fetch_bundle(browser) == first

    browser.sign_and_confirm("test", signers(2)[1])
    second = fetch_bundle(browser)
    assert verify_bundle(second.splitlines()).count == 2
    files = list((instance_path / "bundles").glob("*.jsonl"))
    assert len(files) == 1 and files[0].read_bytes() == second  # the older head's file is gone
