"""PostgreSQL's own server log, read after the signing flows: nothing of any signer in it.

Duplicates (online, by email, on paper, a taken slug, a taken organiser
address) are where a failing INSERT would make PostgreSQL log the statement
with its values. The server runs with the logging settings README's
Production section gives (``.ci/run`` starts its cluster with them and
exports the log's path as COUNTERSIGN_TEST_POSTGRES_LOG); this test reads
the lines written while it ran and looks for every tag, receipt code and
digest, display name, name, address and postcode involved.
"""

import os
from dataclasses import replace

import pytest
from click.testing import CliRunner
from helpers import POSTGRES_URL, Signer, forms_of, make_petition, own_petition, receipt_from, sign_online, upload

from signing import db, ledger
from signing.cli import main as cli
from signing.ledger import accounts
from signing.models import Signature

SERVER_LOG = os.environ.get("COUNTERSIGN_TEST_POSTGRES_LOG", "")

pytestmark = [
    pytest.mark.skipif(not POSTGRES_URL, reason="runs on PostgreSQL only (set COUNTERSIGN_TEST_DATABASE_URL)"),
    pytest.mark.skipif(
        not SERVER_LOG,
        reason="needs the PostgreSQL server's log file: set COUNTERSIGN_TEST_POSTGRES_LOG (.ci/run does)",
    ),
]

ONLINE = Signer(
    name="Lau Siu Ming", postcode="S10 2TN", email="siu.ming.lau@example.net", display_name="Ming from Sheffield"
)
NO_EMAIL = Signer(name="Chan Tai Man", postcode="S1 2HE", email=None, display_name="Tai Man in S1")
PAPER = Signer(name="Ho Ka Yan", postcode="S11 8YA", email=None)


def test_server_log_holds_nothing_of_any_signer(browser, signed_in, organiser, services, instance_path, monkeypatch):
    start = os.path.getsize(SERVER_LOG)
    receipts = []

    # Email: sign, confirm, then sign again twice (already counted; the form gets the same page).
    make_petition(services, "mail", display_names_allowed=True)
    receipts.append(receipt_from(browser.sign_and_confirm("mail", ONLINE)))
    for _ in range(2):
        assert browser.sign("mail", ONLINE).status_code == 200
    # No email: counted at once; the same person again, spelt differently.
    own_petition(services, organiser, "ours", display_names_allowed=True)
    receipts.append(receipt_from(browser.sign("ours", NO_EMAIL)))
    receipts.append(receipt_from(sign_online(browser, "ours", "CHAN Tai  Man")))
    # Paper: one new person, one already counted online, one twice in the file.
    rows = f"name,postcode\n{PAPER.name},{PAPER.postcode}\n{NO_EMAIL.name},{NO_EMAIL.postcode}\n"
    assert upload(signed_in, "ours", (rows + f"{PAPER.name.upper()},{PAPER.postcode}\n").encode()).status_code == 200
    assert upload(signed_in, "ours", rows.encode()).status_code == 200
    # Taken names outside the signing path.
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    assert CliRunner().invoke(cli, ["petition", "create", "mail", "--title", "t", "--body", "b"]).exit_code == 1
    with db.database.connection_context():
        with pytest.raises(ledger.OrganiserExists):
            accounts.add_organiser(services, organiser.email, "another long enough password")
        for petition in ledger.published_petitions():
            ledger.publish(services, petition, force=True)
        rows = list(Signature.select())

    with open(SERVER_LOG, "rb") as log:
        log.seek(start)
        written = log.read()
    # forms_of wants an address; the two who gave none get one that was never sent anywhere.
    unsent = "never.sent@example.invalid"
    needles = forms_of(ONLINE) | forms_of(replace(NO_EMAIL, email=unsent)) | forms_of(replace(PAPER, email=unsent))
    needles |= {name.encode() for name in (ONLINE.display_name, NO_EMAIL.display_name)}
    needles |= {code.encode() for code in receipts}
    for row in rows:
        for value in (row.person_tag, row.email_tag, row.receipt_hash):
            if value is not None:
                needles |= {bytes(value).hex().encode(), bytes(value).hex().upper().encode()}
    assert len(rows) == 3  # one per person: the duplicates were refused
    for needle in needles:
        assert needle not in written, f"{needle!r} is in PostgreSQL's server log"
