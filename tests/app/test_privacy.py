"""The privacy proof: what a signer types is nowhere to be found afterwards.

Signs, checks the receipt, signs again (a duplicate) and withdraws with a
unique identity, then reads every byte of the instance folder (the SQLite
database, its WAL and shared-memory files, the keys) and every captured log
line, looking for the identity in each form it could take.
"""

import logging
import unicodedata

import pytest
from conftest import POSTGRES_URL, Signer, receipt_from

SIGNER = Signer(
    name="Zebediah Quillfeather-Oyelaran",
    postcode="DN55 1PT",
    email="Zeb.Quill+petition@Gmail.com",
    display_name="",
)
CHINESE_SIGNER = Signer(name="歐陽靜雯", postcode="S10 2TN", email="ouyang.jingwen@example.hk")


def forms_of(signer):
    """Every spelling of the identity someone could grep for."""
    name = signer.name
    variants = {
        name,
        name.casefold(),
        name.upper(),
        unicodedata.normalize("NFKC", name).casefold(),
        " ".join(sorted(name.casefold().replace("-", "").split())),
        signer.email,
        signer.email.strip().lower(),
        signer.email.lower().split("+")[0].replace(".", "") + "@gmail.com",
        signer.email.lower().split("@")[0],
        signer.postcode,
        signer.postcode.replace(" ", ""),
        signer.postcode.lower(),
    }
    variants.update(part for part in name.replace("-", " ").split() if len(part) >= 4)
    found = set()
    for text in variants:
        for encoding in ("utf-8", "utf-16-le"):
            found.add(text.encode(encoding))
    return found


def sign_everything(browser, signer):
    code = receipt_from(browser.sign("test", signer))
    browser.check_receipt("test", code)
    browser.sign("test", signer)  # a duplicate
    browser.withdraw("test", code)
    browser.sign("test", signer)  # and back again
    return code


@pytest.mark.parametrize("signer", [SIGNER, CHINESE_SIGNER], ids=["latin", "han"])
def test_identity_absent_from_database_files_and_logs(app, browser, petition, instance_path, caplog, capfd, signer):
    caplog.set_level(logging.DEBUG)
    code = sign_everything(browser, signer)

    logs = (caplog.text + "".join(capfd.readouterr())).encode("utf-8")
    for needle in forms_of(signer):
        assert needle not in logs, f"{needle!r} in the logs"
    assert code.encode() not in logs

    files = [path for path in instance_path.rglob("*") if path.is_file()]
    if not POSTGRES_URL:
        assert any(path.name.endswith("-wal") for path in files), "expected the WAL to be searched too"
    for path in files:
        data = path.read_bytes()
        for needle in forms_of(signer):
            assert needle not in data, f"{needle!r} found in {path.name}"
        assert code.encode() not in data.upper(), f"receipt code in {path.name}"


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
