"""Shredding proves itself: the wrapped key's bytes gone from every file, or a loud failure."""

import re
import shutil
import sqlite3
import subprocess
import threading
import time

import psycopg2
import pytest
from click.testing import CliRunner
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from helpers import POSTGRES_URL, make_petition

from crypto import keys
from crypto.errors import InvalidKey
from crypto.keys import PURPOSE_TAGS
from crypto.tags import person_tag
from signing import db, ledger
from signing.cli import main as cli
from signing.models import Petition


def _closed_petition(services, slug="gone"):
    petition = make_petition(services, slug)
    with db.database.connection_context():
        ledger.close_petition(services, petition)
        return Petition.get_by_id(petition.id)


def _instance_files(instance_path):
    return [path for path in instance_path.iterdir() if path.name.startswith("countersign.db")]


def _key_still_on_disk(instance_path, wrapped):
    return [path.name for path in _instance_files(instance_path) if wrapped in path.read_bytes()]


class Reader:
    """Another connection that has read the petition table in an open transaction: its snapshot
    still sees the wrapped key, as a slow reader's would."""

    def __init__(self, instance_path, table="petition"):
        # Any table will do: the snapshot, not a lock, is what keeps the old copy.
        if POSTGRES_URL:
            self.connection = psycopg2.connect(POSTGRES_URL)
            self.connection.set_session(isolation_level="REPEATABLE READ")
            self.connection.cursor().execute(f"SELECT count(*) FROM {table}")  # noqa: S608
        else:
            self.connection = sqlite3.connect(
                instance_path / "countersign.db", isolation_level=None, check_same_thread=False
            )
            self.connection.execute("BEGIN")
            self.connection.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608

    def leave(self):
        self.connection.rollback() if POSTGRES_URL else self.connection.execute("ROLLBACK")
        self.connection.close()


def _pages_hold(wrapped):
    with db.database.connection_context():
        db.database.execute_sql("CREATE EXTENSION IF NOT EXISTS pageinspect")
        return db._petition_pages_hold(wrapped)


def _assert_gone(instance_path, wrapped):
    if POSTGRES_URL:
        assert not _pages_hold(wrapped), "a live or dead row version still holds the wrapped key"
    else:
        assert not _key_still_on_disk(instance_path, wrapped)


@pytest.mark.parametrize("table", ["petition", "organiser"])
def test_reader_holding_a_snapshot_makes_shred_fail_loudly_then_finish(services, instance_path, other_process, table):
    petition = _closed_petition(services)
    wrapped = bytes(petition.wrapped_key)
    if POSTGRES_URL:
        assert _pages_hold(wrapped)  # the search does find it while it is there
    else:
        assert _key_still_on_disk(instance_path, wrapped)
    reader = Reader(instance_path, table)
    try:
        started = time.monotonic()
        with db.database.connection_context(), pytest.raises(ledger.ShredIncomplete) as failed:
            ledger.shred(services, petition, wait_seconds=1.5)
        assert 1.5 <= time.monotonic() - started < 15  # waited, within its bound
        assert "reader" in str(failed.value) or "transaction" in str(failed.value)
    finally:
        reader.leave()
    with db.database.connection_context():
        assert Petition.get_by_id(petition.id).status == ledger.SHREDDED
    result = CliRunner().invoke(cli, ["shred", "gone", "--yes", "--wait", "5"], env=_env(instance_path))
    assert result.exit_code == 0, result.output
    assert "key destroyed and proven absent" in result.output and "rotate-master-key" in result.output
    _assert_gone(instance_path, wrapped)


def test_shred_waits_for_a_reader_that_leaves_within_the_bound(services, instance_path, other_process):
    petition = _closed_petition(services)
    wrapped = bytes(petition.wrapped_key)
    reader = Reader(instance_path)
    leaving = threading.Timer(1.0, reader.leave)
    leaving.start()
    try:
        with db.database.connection_context():
            places = ledger.shred(services, petition, wait_seconds=20)
    finally:
        leaving.join()
    assert places
    _assert_gone(instance_path, wrapped)


def test_cli_shred_with_a_reader_says_not_finished(services, instance_path, other_process):
    _closed_petition(services)
    reader = Reader(instance_path)
    try:
        result = CliRunner().invoke(cli, ["shred", "gone", "--yes", "--wait", "1"], env=_env(instance_path))
    finally:
        reader.leave()
    assert result.exit_code == 1
    assert "NOT FINISHED" in result.output and "signing shred gone" in result.output
    assert "key destroyed" not in result.output


def _env(instance_path):
    return {"SIGNING_INSTANCE_PATH": str(instance_path)}


# --- backups: shred, then rotate the master key -------------------------------------------


def _paper_sign(services, petition):
    with db.database.connection_context():
        identity = ledger.canonical_identity(
            services, petition, name="Clara Cheung", postcode="S1 2HE", email=None, email_optional=True
        )
        ledger.add_paper_signatures(services, petition, [identity])
        ledger.publish(services, petition, force=True)  # settled into a signature, as the next batch does
        return identity


def _backup(instance_path, tmp_path):
    """A backup as an operator takes one: a file copy (SQLite) or pg_dump (PostgreSQL)."""
    if POSTGRES_URL:
        dump = subprocess.run(
            ["pg_dump", "--data-only", "--column-inserts", "--table=petition", "--table=signature", POSTGRES_URL],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout
        return dump
    copy = tmp_path / "backup"
    copy.mkdir()
    for path in _instance_files(instance_path):
        shutil.copy(path, copy / path.name)
    return copy


def _from_backup(backup, slug):
    """(wrapped key, person tags) of ``slug`` as the backup holds them."""
    if POSTGRES_URL:
        lines = re.findall(r"INSERT INTO .*?\);\n", backup, re.S)  # one per row, text may span lines
        petition_row = next(line for line in lines if "INSERT INTO public.petition" in line and f"'{slug}'" in line)
        wrapped = next(
            bytes.fromhex(value) for value in re.findall(r"'\\x([0-9a-f]+)'", petition_row) if len(value) == 2 * 61
        )
        petition_id = re.search(r"VALUES \((\d+),", petition_row).group(1)
        tags = [
            bytes.fromhex(re.findall(r"'\\x([0-9a-f]+)'", line)[0])
            for line in lines
            if "INSERT INTO public.signature" in line and re.search(rf"VALUES \(\d+, {petition_id},", line)
        ]
        return wrapped, tags
    connection = sqlite3.connect(backup / "countersign.db")
    try:
        (petition_id, wrapped), = connection.execute("SELECT id, wrapped_key FROM petition WHERE slug = ?", (slug,))
        rows = connection.execute("SELECT person_tag FROM signature WHERE petition_id = ?", (petition_id,))
        tags = [row[0] for row in rows]
    finally:
        connection.close()
    return bytes(wrapped), [bytes(tag) for tag in tags]


def _tag_keys_from(candidate, wrapped, slug):
    """Every tag key an attacker could get from ``candidate`` and the backup's wrapped key."""
    found = []
    for open_with in (keys.unwrap_petition_key, _legacy_unwrap):
        try:
            found.append(keys.derive_subkey(open_with(candidate, wrapped, slug), PURPOSE_TAGS))
        except (InvalidKey, InvalidTag):
            pass
    return found


def _legacy_unwrap(master, wrapped, slug):
    ad = b"countersign/petition-key/v1\x00" + slug.encode()
    return AESGCM(master).decrypt(wrapped[1:13], wrapped[13:], ad)


def _matches(tag_key, petition, identity, tags):
    params, salt = petition.argon2, bytes(petition.salt)
    return person_tag(tag_key, salt, params, identity.name, identity.postcode) in tags


def test_backup_from_before_shred_cannot_recover_the_tag_key_after_rotation(
    services, make_app, instance_path, tmp_path, other_process
):
    gone, live = make_petition(services, "gone"), make_petition(services, "live")
    guessed = _paper_sign(services, gone)
    _paper_sign(services, live)
    backup = _backup(instance_path, tmp_path)
    old_master = (instance_path / "master.key").read_bytes()
    wrapped, tags = _from_backup(backup, "gone")
    # The attack works before rotation: the old master key opens the backup and matches the guess.
    assert any(_matches(key, gone, guessed, tags) for key in _tag_keys_from(old_master, wrapped, "gone"))

    with db.database.connection_context():
        ledger.close_petition(services, Petition.get_by_id(gone.id))
        ledger.shred(services, Petition.get_by_id(gone.id), wait_seconds=5)
    result = CliRunner().invoke(cli, ["rotate-master-key", "--yes"], env=_env(instance_path))
    assert result.exit_code == 0, result.output
    assert not (instance_path / "master.key.new").exists()

    # Every file left but the database itself; every 32 bytes in them tried as a master key.
    files = [path for path in instance_path.rglob("*") if path.is_file() and "countersign.db" not in path.name]
    kept = [path.read_bytes() for path in files]
    candidates = [data[i : i + 32] for data in kept for i in range(max(1, len(data) - 31))]
    assert old_master not in candidates
    for candidate in candidates:
        for tag_key in _tag_keys_from(candidate, wrapped, "gone") + [keys.derive_subkey(candidate, PURPOSE_TAGS)]:
            assert not _matches(tag_key, gone, guessed, tags)

    # Live petitions carry on under the new key: the same person is still recognised.
    fresh_app = make_app()
    with fresh_app.app_context(), db.database.connection_context():
        fresh = fresh_app.extensions["countersign"]
        ledger.add_paper_signatures(fresh, Petition.get_by_id(live.id), [guessed])
        ledger.publish(fresh, Petition.get_by_id(live.id), force=True)
        assert ledger.current_count(Petition.get_by_id(live.id)) == 1  # a duplicate, not a second count


def test_interrupted_rotation_stops_the_service_until_finished(services, instance_path, make_app):
    petition = make_petition(services, "live")
    keys.create_master_key_file(instance_path / "master.key.new")  # crashed right after making the new key
    with pytest.raises(InvalidKey, match="rotate-master-key"):
        make_app()
    result = CliRunner().invoke(cli, ["rotate-master-key", "--yes"], env=_env(instance_path))
    assert result.exit_code == 0, result.output
    fresh_app = make_app()
    with fresh_app.app_context(), db.database.connection_context():
        assert fresh_app.extensions["countersign"].keyring.petition_subkey(Petition.get_by_id(petition.id), "tags")
