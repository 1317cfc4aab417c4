"""Schema versions: `signing init` records one, and numbered steps run once each."""

import threading
import time

import pytest
from click.testing import CliRunner
from helpers import POSTGRES_URL
from peewee import CharField
from playhouse.migrate import SchemaMigrator, migrate

from signing import db, migrations
from signing.cli import main
from signing.models import ALL_MODELS, SCHEMA_VERSION, SchemaVersion


@pytest.fixture
def empty_database(tmp_path):
    """The URL of a database with no tables, bound to ``db.database``."""
    if POSTGRES_URL:
        url = POSTGRES_URL
        database = db.open_database(url)
        with database.connection_context():
            database.drop_tables(ALL_MODELS, safe=True, cascade=True)
    else:
        url = f"sqlite:///{tmp_path / 'fresh.db'}"
        db.open_database(url)
    yield url
    if not db.database.is_closed():
        db.database.close()


def recorded_versions():
    with db.database.connection_context():
        return sorted(row.version for row in SchemaVersion.select())


def columns(table):
    with db.database.connection_context():
        return {column.name for column in db.database.get_columns(table)}


class FakeStep:
    """A version-2 step that adds a column and counts how often it ran."""

    def __init__(self, pause=0.0):
        self.calls = 0
        self.pause = pause

    def __call__(self, migrator):
        self.calls += 1
        time.sleep(self.pause)
        migrate(migrator.add_column("organiser", "nickname", CharField(max_length=40, default="")))

    def steps(self):
        return [migrations.Step(2, "organiser.nickname (test only)", self)]


def test_init_creates_schema_and_records_version(tmp_path, empty_database, monkeypatch):
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("SIGNING_DATABASE_URL", empty_database)
    runner = CliRunner()
    first = runner.invoke(main, ["init"])
    assert first.exit_code == 0, first.output
    assert f"schema version {SCHEMA_VERSION}" in first.output
    assert recorded_versions() == [SCHEMA_VERSION]

    again = runner.invoke(main, ["init"])
    assert again.exit_code == 0, again.output
    assert recorded_versions() == [SCHEMA_VERSION]
    migrations.check_version()


def test_a_new_step_is_applied_once(empty_database):
    assert migrations.migrate_to_latest(steps=[], latest=1) == [1]
    step = FakeStep()
    assert "nickname" not in columns("organiser")

    assert migrations.migrate_to_latest(steps=step.steps(), latest=2) == [2]
    assert "nickname" in columns("organiser")
    assert recorded_versions() == [1, 2]

    assert migrations.migrate_to_latest(steps=step.steps(), latest=2) == []
    assert step.calls == 1
    migrations.check_version(latest=2)
    with pytest.raises(migrations.SchemaVersionError, match="newer than this code"):
        migrations.check_version(latest=1)
    with pytest.raises(migrations.SchemaVersionError, match="newer than this code"):
        migrations.migrate_to_latest(steps=[], latest=1)


def test_hosts_migrating_at_once_apply_each_step_once(empty_database):
    migrations.migrate_to_latest(steps=[], latest=1)
    step = FakeStep(pause=0.2)
    errors = []

    def host():
        try:
            migrations.migrate_to_latest(steps=step.steps(), latest=2)
        except Exception as error:  # noqa: BLE001 -- reported below
            errors.append(error)
        finally:
            if not db.database.is_closed():
                db.database.close()

    threads = [threading.Thread(target=host) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert step.calls == 1
    assert recorded_versions() == [1, 2]


def test_database_from_before_versions_counts_as_baseline(empty_database):
    with db.database.connection_context():
        db.database.create_tables([m for m in ALL_MODELS if m is not SchemaVersion])
    assert migrations.migrate_to_latest(steps=FakeStep().steps(), latest=2) == [2]
    assert recorded_versions() == [2]
    assert "nickname" in columns("organiser")


def test_refuses_gaps_in_step_numbers(empty_database):
    with pytest.raises(migrations.SchemaVersionError, match="numbered"):
        migrations.migrate_to_latest(steps=[migrations.Step(3, "skips 2", FakeStep())], latest=3)


def test_check_version_on_empty_database_says_run_init(empty_database):
    with pytest.raises(migrations.SchemaVersionError, match="signing init"):
        migrations.check_version()


def test_step_three_adds_the_receipt_flash_table(empty_database):
    migrations.migrate_to_latest(steps=migrations.STEPS[:1], latest=2)
    with db.database.connection_context():
        db.database.execute_sql("DROP TABLE receipt_flash")  # as a version 2 database has it
    assert migrations.migrate_to_latest(steps=migrations.STEPS[:2], latest=3) == [3]
    with db.database.connection_context():
        assert "receipt_flash" in db.database.get_tables()


def test_version_3_database_gets_the_witness_tables(empty_database):
    """Step 4 adds the cosignature and witness_report tables, and nothing else changes."""
    from signing.models import Cosignature, WitnessReport

    with db.database.connection_context():
        db.database.create_tables([m for m in ALL_MODELS if m not in (Cosignature, WitnessReport)])
        SchemaVersion.create(version=3)
    version_4 = {"steps": migrations.STEPS[:3], "latest": 4}
    assert migrations.migrate_to_latest(**version_4) == [4]
    assert {"petition_id", "size", "witness", "line", "timestamp"} <= columns("cosignature")
    assert {"petition_id", "size", "witness", "status", "message", "at"} <= columns("witness_report")
    with db.database.connection_context():
        indexes = {index.name: index for index in db.database.get_indexes("cosignature")}
    assert any(index.unique and index.columns == ["petition_id", "size", "witness"] for index in indexes.values())
    assert migrations.migrate_to_latest(**version_4) == []


def test_init_rewraps_keys_wrapped_under_the_master_key_itself(tmp_path, empty_database, monkeypatch):
    """DESIGN §4, one key one purpose: `signing init` moves format 1 wrapped keys to the HKDF wrapping key, once."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from crypto import keys
    from signing.models import Petition

    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.setenv("SIGNING_DATABASE_URL", empty_database)
    runner = CliRunner()
    assert runner.invoke(main, ["init"]).exit_code == 0
    master = keys.load_master_key(tmp_path / "instance" / "master.key")
    petition_key, nonce = keys.new_petition_key(), bytes(12)
    legacy = b"\x01" + nonce + AESGCM(master).encrypt(nonce, petition_key, b"countersign/petition-key/v1\x00old")
    with db.database.connection_context():
        Petition.create(slug="old", title="t", body="b", salt=keys.new_salt(), wrapped_key=legacy, argon2_params="{}")
        SchemaVersion.delete().execute()
        SchemaVersion.create(version=2)
        for column in ("totp_pending", "failed_codes", "codes_locked_until"):
                db.database.execute_sql(f"ALTER TABLE organiser DROP COLUMN {column}")  # noqa: S608

    result = runner.invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    assert recorded_versions() == [2, 3, 4, 5, 6, 7, 8]
    with db.database.connection_context():
        wrapped = bytes(Petition.get(Petition.slug == "old").wrapped_key)
    assert wrapped[0] == 2
    assert keys.unwrap_petition_key(master, wrapped, "old") == petition_key
    assert runner.invoke(main, ["init"]).exit_code == 0
    with db.database.connection_context():
        assert bytes(Petition.get(Petition.slug == "old").wrapped_key) == wrapped  # applied once


def test_step_seven_adds_when_a_petition_closed(empty_database):
    version_7 = {"steps": migrations.STEPS[:6], "latest": 7}
    migrations.migrate_to_latest(steps=migrations.STEPS[:5], latest=6)
    with db.database.connection_context():
        # As a version 6 database has it: no closed_at column.
        migrate(SchemaMigrator.from_database(db.database).drop_column("petition", "closed_at"))
    assert "closed_at" not in columns("petition")
    assert migrations.migrate_to_latest(**version_7) == [7]
    assert "closed_at" in columns("petition")


def test_step_8_moves_pending_signatures_to_the_inbox_and_adds_the_outbox(empty_database):
    from datetime import date, datetime

    from signing.models import Inbox, Outbox, Petition, Signature

    with db.database.connection_context():
        db.database.create_tables([m for m in ALL_MODELS if m not in (Inbox, Outbox)])
        db.database.execute_sql("ALTER TABLE petition DROP COLUMN at_risk")
        SchemaVersion.create(version=7)
        mark = db.database.param
        cursor = db.database.execute_sql(
            "INSERT INTO petition (slug, title, body, eligibility, title_zh, body_zh, eligibility_zh, status, "
            "require_email, require_postcode, allowed_areas, display_names_allowed, thresholds, salt, key_version, "
            f"argon2_params) VALUES ('p', 't', 'b', '', '', '', '', 'open', {mark}, {mark}, '', {mark}, '', {mark}, 1, "
            "'{}')" + (" RETURNING id" if POSTGRES_URL else ""),
            (True, True, True, b"\x00"),
        )
        petition_id = cursor.fetchone()[0] if POSTGRES_URL else db.database.last_insert_id(cursor)
        for status, token in (("pending", b"\x01" * 32), ("counted", None)):
            Signature.insert(
                petition=petition_id,
                person_tag=b"p" + status.encode(),
                email_tag=b"e" + status.encode(),
                status=status,
                day=date(2026, 1, 1),
                display_name_hidden=False,
                channel="online",
                token_hash=token,
                token_expires=datetime(2030, 1, 1) if token else None,
            ).execute()
    assert migrations.migrate_to_latest() == [8]
    with db.database.connection_context():
        (moved,) = Inbox.select()
        assert bytes(moved.token_hash) == b"\x01" * 32 and not moved.ready and not moved.settled
        assert [s.status for s in Signature.select()] == ["counted"]
        assert Outbox.select().count() == 0 and "at_risk" in columns("petition")
        assert not Petition.get_by_id(petition_id).at_risk
