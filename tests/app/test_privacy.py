"""The privacy proof: what a signer types is nowhere to be found afterwards.

Signs (following the mailed link to confirm), checks the receipt, signs again
(a duplicate, which mails "already signed") and withdraws with a unique
identity, then reads every byte of the instance folder (the SQLite database,
its WAL and shared-memory files, the keys) and every captured log line,
looking for the identity in each form it could take, and for the receipt
codes and confirmation tokens. The search itself (``forms_of``,
``assert_no_trace``) lives in conftest.py, so the mail tests in
test_confirmation.py run it after each of their cases too.
"""

import logging

import pytest
from helpers import POSTGRES_URL, Signer, assert_no_trace, captured_logs, forms_of, receipt_from

SIGNER = Signer(
    name="Zebediah Quillfeather-Oyelaran",
    postcode="DN55 1PT",
    email="Zeb.Quill+petition@Gmail.com",
    display_name="",
)
CHINESE_SIGNER = Signer(name="歐陽靜雯", postcode="S10 2TN", email="ouyang.jingwen@example.hk")


def sign_everything(browser, signer):
    code = receipt_from(browser.sign_and_confirm("test", signer))
    browser.check_receipt("test", code)
    browser.sign("test", signer)  # a duplicate: mails "already signed"
    browser.withdraw("test", code)
    again = receipt_from(browser.sign_and_confirm("test", signer))  # and back again
    return [code, again]


@pytest.mark.parametrize("signer", [SIGNER, CHINESE_SIGNER], ids=["latin", "han"])
def test_identity_absent_from_database_files_and_logs(
    app, browser, petition, other_process, instance_path, caplog, capfd, signer
):
    caplog.set_level(logging.DEBUG)
    codes = sign_everything(browser, signer)
    # Three messages went out (confirm, already signed, confirm): the address was used.
    assert len(browser.mailbox.to(signer.email.strip())) == 3
    assert_no_trace(instance_path, captured_logs(caplog, capfd), [signer], codes + browser.mailbox.tokens)


@pytest.mark.skipif(not POSTGRES_URL, reason="needs PostgreSQL")
def test_identity_absent_from_postgres_tables(app, browser, petition):
    from signing.db import database

    sign_everything(browser, SIGNER)
    with database.connection_context():
        tables = [row[0] for row in database.execute_sql("SELECT tablename FROM pg_tables WHERE schemaname='public'")]
        dump = "".join(
            str(row)
            for table in tables
            for row in database.execute_sql(f'SELECT * FROM "{table}"').fetchall()  # noqa: S608 -- names from the catalogue
        )
    for needle in forms_of(SIGNER):
        text = needle.decode("utf-8", "ignore")
        assert not text or text not in dump
