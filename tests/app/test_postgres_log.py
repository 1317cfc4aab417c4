"""PostgreSQL's own log records no tag, receipt digest or display name (issue 16 item 5).

PostgreSQL logs every failing statement with its values by default; duplicates
are therefore found without an error (INSERT ... ON CONFLICT DO NOTHING at
settlement). Runs the signing flows, duplicates of every kind included, then
reads what the server logged meanwhile. Needs COUNTERSIGN_TEST_POSTGRES_LOG,
the server's log file (``.ci/run`` and /work/pg/start.sh write one).
"""

import os
from pathlib import Path

import pytest
from helpers import POSTGRES_URL, Signer, make_petition, receipt_from, upload

from signing import db
from signing.models import Inbox, Signature

LOG = Path(os.environ.get("COUNTERSIGN_TEST_POSTGRES_LOG", ""))

pytestmark = pytest.mark.skipif(
    not (POSTGRES_URL and LOG.is_file() and os.access(LOG, os.R_OK)),
    reason="needs PostgreSQL and its log (COUNTERSIGN_TEST_POSTGRES_LOG)",
)


def test_signing_flows_leave_nothing_in_the_postgres_log(signed_in, organiser, services, mailbox):
    browser = signed_in
    start = LOG.stat().st_size
    make_petition(services, "open", require_email=False, organiser=organiser.id)
    make_petition(services, "mail")
    clara = Signer(display_name="Clara In The Log")
    for _ in range(2):  # the second is a duplicate, settled without a failing INSERT
        receipt_from(browser.sign("open", Signer(email=None, display_name="Open Duplicate Name")))
        receipt_from(browser.sign_and_confirm("mail", clara))
    upload(browser, "open", b"name,postcode\nClara Cheung,S1 2HE\nclara cheung,S1 2HE\nBo Li,S2 4SU\n")
    browser.publish()
    code = receipt_from(browser.sign_and_confirm("mail", Signer(name="Wong Tai Sin", email="w@example.org")))
    browser.withdraw("mail", code)
    with db.database.connection_context():
        needles = {"Clara In The Log", "Open Duplicate Name"}
        for row in Signature.select():
            needles.update(bytes(v).hex() for v in (row.person_tag, row.email_tag, row.receipt_hash) if v)
        needles.update(bytes(row.receipt_hash).hex() for row in Inbox.select() if row.receipt_hash)
    assert len(needles) > 10
    with open(LOG, "rb") as log:
        log.seek(start)
        logged = log.read().decode("utf-8", "replace").lower()
    for needle in needles:
        assert needle.lower() not in logged, f"{needle!r} in PostgreSQL's log"
