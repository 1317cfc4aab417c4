"""The log and two real witness processes (``signing witness serve``), end to end over HTTP:
batches publish with two cosignatures; with one witness down, signing and publishing go on and
the checkpoint carries one; a forked checkpoint shown to a witness is refused, and
``signing-audit compare`` prints a fork proof that a second run verifies."""

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from helpers import PUBLIC_URL, Signer, free_port, receipt_from

from crypto import keys
from crypto.audit import main as audit_main
from crypto.merkle import root_of
from crypto.note import AddCheckpoint, Checkpoint, log_verifier, public_bytes, sign_checkpoint
from signing import db, keyring, ledger
from signing.ledger import witnessing
from signing.models import WitnessReport

PROJECT = Path(__file__).resolve().parents[2]
ORIGIN = PUBLIC_URL.split("://", 1)[1] + "/test"
ZH = {"Accept-Language": "zh-HK,zh;q=0.9"}


def signers(start, count):
    return [Signer(name=f"Person {chr(65 + i)}", email=f"w{i}@example.org") for i in range(start, start + count)]


class WitnessProcess:
    """One ``signing witness serve`` process with its own state folder and port."""

    def __init__(self, state, name, log_vkey):
        self.state, self.name, self.log_vkey = str(state), name, log_vkey
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.vkey = self._cli("vkey", "--state", self.state, "--name", name).stdout.strip()
        self.process = None

    def _cli(self, *args):
        return subprocess.run(
            [sys.executable, "-c", "from signing.cli import main; main()", "witness", *args],
            cwd=PROJECT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def start(self):
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from signing.cli import main; main()",
                "witness",
                "serve",
                "--state",
                self.state,
                "--name",
                self.name,
                "--log",
                self.log_vkey,
                "--port",
                str(self.port),
            ],
            cwd=PROJECT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("witness did not start")

    def stop(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def log_key(instance_path):
    keyring.create_missing(f"{instance_path}/master.key", f"{instance_path}/log.key")
    return keys.load_log_key(f"{instance_path}/log.key")


@pytest.fixture
def witnesses(tmp_path, log_key):
    log_vkey = log_verifier(ORIGIN, public_bytes(log_key)).vkey
    pair = [WitnessProcess(tmp_path / f"w{i}", f"witness{i}.example/w", log_vkey).start() for i in (1, 2)]
    yield pair
    for witness in pair:
        witness.stop()


@pytest.fixture
def app_config(app_config, witnesses):
    lines = [f"{w.vkey} {w.url} Witness number {i}" for i, w in enumerate(witnesses, start=1)]
    return {**app_config, "WITNESSES": "\n".join(lines), "WITNESS_TIMEOUT_SECONDS": 3}


def served(browser):
    witnessing.settle()
    return browser.client.get("/p/test/audit/checkpoint").get_data(as_text=True)


def test_two_witnesses_cosign_then_one_is_down_then_a_fork_is_refused(
    browser, petition, witnesses, log_key, tmp_path, c2spcheck, capsys
):
    codes = [receipt_from(browser.sign_and_confirm("test", signer)) for signer in signers(0, 2)]
    note = served(browser)
    key = browser.client.get("/p/test/audit/key").get_json()
    vkey = key["vkey"]
    result = c2spcheck("open", vkey, *(w.vkey for w in witnesses), stdin=note)
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith(f"{ORIGIN}\n2\n")
    assert [line.split()[1] for line in result.stdout.splitlines()[3:]] == [w.name for w in witnesses]

    # The signer's downloadable proof carries the cosigned checkpoint; an auditor's policy checks it.
    document = browser.submit("/p/test/receipt", {"receipt": codes[0]}, action="/p/test/receipt/proof").get_data()
    proof_file = tmp_path / "proof.json"
    proof_file.write_bytes(document)
    policy = ["--key", key["public_key"], *sum((["--witness", w.vkey] for w in witnesses), [])]
    assert audit_main(["proof", *policy, "--quorum", "2", codes[0], str(proof_file)]) == 0
    assert capsys.readouterr().out.count("cosigned by witness") == 2

    # One witness down: signing and publishing go on, the checkpoint carries one cosignature.
    witnesses[1].stop()
    browser.sign_and_confirm("test", signers(2, 1)[0])
    note = served(browser)
    assert note.startswith(f"{ORIGIN}\n3\n")
    result = c2spcheck("open", vkey, *(w.vkey for w in witnesses), stdin=note)
    assert [line.split()[1] for line in result.stdout.splitlines()[3:]] == [witnesses[0].name]
    with db.database.connection_context():
        report = WitnessReport.get(WitnessReport.witness == witnesses[1].name)
    assert (report.size, report.status) == (3, None) and report.message.startswith("unreachable")
    document = browser.submit("/p/test/receipt", {"receipt": codes[0]}, action="/p/test/receipt/proof").get_data()
    proof_file.write_bytes(document)
    assert audit_main(["proof", *policy, "--quorum", "2", codes[0], str(proof_file)]) == 1
    assert "1 of the policy's 2 witnesses cosigned" in capsys.readouterr().out
    assert audit_main(["proof", *policy, "--quorum", "1", codes[0], str(proof_file)]) == 0
    capsys.readouterr()
    page = browser.client.get("/p/test").get_data(as_text=True)
    assert "1 of 2 independent witnesses has confirmed the latest count." in page
    assert "Witness number 1, at " in page and "Witness number 2" not in page

    # Back up: it catches up from the size it last cosigned (2) to the next batch.
    witnesses[1].start()
    browser.sign_and_confirm("test", signers(3, 1)[0])
    result = c2spcheck("open", vkey, *(w.vkey for w in witnesses), stdin=served(browser))
    assert len(result.stdout.splitlines()[3:]) == 2, result.stdout
    page = browser.client.get("/p/test").get_data(as_text=True)
    assert "2 of 2 independent witnesses have confirmed the latest count." in page
    assert "Witness number 1, at " in page and "Witness number 2, at " in page
    page = browser.client.get("/p/test", headers=ZH).get_data(as_text=True)
    assert "2 位獨立見證人之中，已有 2 位確認最新的聯署數目。" in page and "Witness number 2，於 " in page

    # The operator signs a forked checkpoint of the same size and shows it to witness 1.
    latest = served(browser)
    size = int(latest.split("\n")[1])
    forged = sign_checkpoint(log_key, Checkpoint(ORIGIN, size, root_of([b"a", b"split", b"view", b"!"])))
    request = urllib.request.Request(  # noqa: S310 -- our own witness on loopback
        witnesses[0].url + "/add-checkpoint", data=AddCheckpoint(size, [], forged).body(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)  # noqa: S310
    assert refused.value.code == 409

    # Two auditors hold the two views; compare prints a fork proof, a second run checks it.
    council, signers_view = tmp_path / "council.txt", tmp_path / "signers.txt"
    council.write_text(latest)
    signers_view.write_text(forged)
    assert audit_main(["compare", "--vkey", vkey, str(council), str(signers_view)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"FAIL: fork: two checkpoints of size {size} with different roots")
    proof = tmp_path / "fork.json"
    proof.write_text(out[out.index("{") :])
    checked = subprocess.run(
        [sys.executable, "-m", "crypto.audit", "fork", str(proof)], cwd=PROJECT, capture_output=True, text=True
    )
    assert checked.returncode == 0 and "FORK:" in checked.stdout, checked.stdout + checked.stderr


def test_each_witness_is_served_by_gunicorn_and_answers_its_own_key(witnesses):
    """`witness serve` is a production server, not werkzeug's development one."""
    for witness in witnesses:
        with urllib.request.urlopen(f"{witness.url}/vkey", timeout=10) as answer:  # noqa: S310
            assert answer.headers["Server"] == "gunicorn"
            assert answer.read().decode().strip() == witness.vkey


def test_certificate_names_the_witnesses_in_both_languages(browser, petition, services, witnesses):
    browser.sign_and_confirm("test", signers(0, 1)[0])
    witnessing.settle()
    with db.database.connection_context():
        ledger.close_petition(services, petition)
    for headers, expected in (
        ({}, "2 of 2 independent witnesses have confirmed the latest count."),
        (ZH, "2 位獨立見證人之中，已有 2 位確認最新的聯署數目。"),
    ):
        page = browser.client.get("/p/test/certificate", headers=headers).get_data(as_text=True)
        assert expected in page, page
