"""Checkpoints served in the C2SP format, fetched over HTTP and checked by Go's sumdb note and tlog."""

import base64

from helpers import Signer

from crypto import merkle
from crypto.note import Checkpoint, Verifier, open_checkpoint


def signers(count):
    return [Signer(name=f"Person {chr(65 + i)}", email=f"p{i}@example.org") for i in range(count)]


def b64(raw):
    return base64.b64encode(raw).decode()


def test_checkpoint_is_the_latest_head_and_go_verifies_it(browser, petition, c2spcheck):
    for signer in signers(3):
        browser.sign_and_confirm("test", signer)
    key = browser.client.get("/p/test/audit/key").get_json()
    assert key["vkey"].startswith("petitions.example.org/test+")
    response = browser.client.get("/p/test/audit/checkpoint")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    note = response.get_data(as_text=True)
    head = browser.client.get("/p/test/audit/heads").get_json()["heads"][-1]["head"]
    assert note.startswith(f"petitions.example.org/test\n{head['size']}\n{b64(bytes.fromhex(head['root']))}\n\n")
    result = c2spcheck("open", key["vkey"], stdin=note)
    assert result.returncode == 0, result.stdout
    checkpoint, _ = open_checkpoint(note, Verifier.from_vkey(key["vkey"]))
    assert checkpoint == Checkpoint("petitions.example.org/test", 3, bytes.fromhex(head["root"]))
    # The same bytes every time: a stable URL, deterministic signatures.
    assert browser.client.get("/p/test/audit/checkpoint").get_data(as_text=True) == note


def test_every_head_has_a_checkpoint_consistent_by_go_tlog(browser, petition, c2spcheck):
    for signer in signers(5):
        browser.sign_and_confirm("test", signer)
    vkey = browser.client.get("/p/test/audit/key").get_json()["vkey"]
    first = browser.client.get("/p/test/audit/checkpoint/2").get_data(as_text=True)
    second = browser.client.get("/p/test/audit/checkpoint/5").get_data(as_text=True)
    assert c2spcheck("open", vkey, stdin=first).returncode == 0
    old = Checkpoint.parse(first.split("\n\n")[0] + "\n")
    new = Checkpoint.parse(second.split("\n\n")[0] + "\n")
    proof = browser.client.get("/p/test/audit/proof/consistency?first=2&second=5").get_json()["proof"]
    args = [str(old.size), b64(old.root), str(new.size), b64(new.root), *(b64(bytes.fromhex(p)) for p in proof)]
    result = c2spcheck("consistency", *args)
    assert result.returncode == 0, result.stdout
    merkle.verify_consistency(2, 5, old.root, new.root, [bytes.fromhex(p) for p in proof])
    assert browser.client.get("/p/test/audit/checkpoint/4000").status_code == 404
    assert browser.client.get("/p/nope/audit/checkpoint").status_code == 404


def test_no_witness_section_without_witnesses(browser, petition):
    assert "Independent witnesses" not in browser.client.get("/p/test").get_data(as_text=True)
