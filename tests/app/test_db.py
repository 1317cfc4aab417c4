"""The statements the signing path prepares once (db.insert_row, db.PreparedSelect) give what peewee would."""

from datetime import datetime

from helpers import make_petition

from signing import db
from signing.ledger.logstore import latest_head
from signing.models import ONLINE, Inbox, ReceiptFlash, TreeHead


def test_insert_row_stores_what_create_would_with_the_models_defaults(app, services):
    petition = make_petition(services, require_email=False)
    with db.database.connection_context():
        fast_id = db.insert_row(Inbox, petition=petition.id, person_tag=b"\x00\xfftag", ready=True)
        slow = Inbox.create(petition=petition.id, person_tag=b"\x00\xfftag2", ready=True)
        fast = Inbox.get_by_id(fast_id)
        assert fast_id != slow.id
        for name in ("channel", "ready", "settled", "email_tag", "token_expires"):
            assert getattr(fast, name) == getattr(Inbox.get_by_id(slow.id), name), name
        assert fast.channel == ONLINE and fast.settled is False and bytes(fast.person_tag) == b"\x00\xfftag"


def test_insert_row_converts_values_as_their_fields_do(app):
    expires = datetime(2026, 12, 4, 18, 30, 15, 123456)
    with db.database.connection_context():
        row_id = db.insert_row(ReceiptFlash, handle="ab" * 32, sealed=b"sealed", expires_at=expires)
        assert db.insert_row(ReceiptFlash, handle="cd" * 32, sealed=b"", expires_at=expires) == row_id + 1
        row = ReceiptFlash.get_by_id(row_id)
        assert row.expires_at == expires and bytes(row.sealed) == b"sealed"
        assert ReceiptFlash.select().where(ReceiptFlash.expires_at <= expires).count() == 2  # compared as dates


def test_a_prepared_select_gives_the_rows_peewee_gives(app, browser, services, petition):
    browser.sign_and_confirm("test")
    with db.database.connection_context():
        prepared = latest_head(petition.id)
        ordinary = TreeHead.select().where(TreeHead.petition == petition.id).order_by(TreeHead.size.desc()).first()
        assert prepared.__data__ == ordinary.__data__
        assert isinstance(prepared.published_at, datetime) and prepared.size == 1
        assert not prepared.is_dirty()  # read, not changed: a save() would write nothing
