"""A witness that refuses, and one that cannot be reached: signing goes on, and the operator is told."""

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from helpers import OrganiserActions, Signer, free_port
from test_witnessing import WitnessProcess

from crypto.note import ALG_COSIGNATURE_V1, Verifier, log_verifier, public_bytes
from signing.cli import main as cli
from signing.ledger import witnessing


@pytest.fixture
def stranger_witness(tmp_path):
    """A real witness that knows this petition's origin under another log key: it answers 403."""
    other_log = log_verifier("petitions.example.org/test", public_bytes(Ed25519PrivateKey.generate()))
    witness = WitnessProcess(tmp_path / "w", "stranger.example/w", other_log.vkey).start()
    yield witness
    witness.stop()


@pytest.fixture
def app_config(app_config, stranger_witness):
    nowhere = Verifier("nowhere.example/w", ALG_COSIGNATURE_V1, public_bytes(Ed25519PrivateKey.generate()))
    lines = [
        f"{stranger_witness.vkey} {stranger_witness.url} Stranger",
        f"{nowhere.vkey} http://127.0.0.1:{free_port()} Nowhere",
    ]
    return {**app_config, "WITNESSES": "\n".join(lines), "WITNESS_TIMEOUT_SECONDS": 2}


def test_refusals_are_recorded_and_shown_to_the_operator(
    browser, petition, operator, instance_path, monkeypatch, caplog
):
    browser.sign_and_confirm("test", Signer())
    witnessing.settle()
    page = browser.client.get("/p/test").get_data(as_text=True)
    assert "No independent witness has confirmed the latest count yet." in page
    assert "WITNESS stranger.example/w did not cosign the checkpoint of petition test at size 1: 403" in caplog.text

    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    result = CliRunner().invoke(cli, ["witness", "reports"])
    assert result.exit_code == 0, result.output
    assert "stranger.example/w /p/test size 1 403: 403: does not trust this log's key" in result.output
    assert "nowhere.example/w /p/test size 1 unreachable: unreachable" in result.output

    OrganiserActions(browser).login()
    dashboard = browser.client.get("/organiser/").get_data(as_text=True)
    assert "Witnesses that did not cosign" in dashboard and "stranger.example/w" in dashboard
