"""Shredding proves itself: the wrapped key's bytes gone from every file, or a loud failure."""

import sqlite3
import threading
import time

import psycopg2
import pytest
from click.testing import CliRunner
from helpers import POSTGRES_URL, make_petition

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
