"""The database: chosen by URL, one connection per request, schema creation.

SQLite is the embedded default. It runs in WAL mode (readers never wait for
the writer) with ``secure_delete`` so a shredded key's bytes are overwritten,
not left in a free page. PostgreSQL is chosen with a ``postgresql://`` URL;
nothing else in the code knows which engine it talks to.
"""

import logging
from contextlib import contextmanager

from peewee import DatabaseProxy, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect

database = DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "secure_delete": "on",
    "foreign_keys": 1,
    "synchronous": "normal",
    # A writer waits for another instead of failing at once.
    "busy_timeout": 10000,
}

# peewee logs every statement with its parameters at DEBUG: tags, receipts
# digests and tokens must never reach a log, whatever the root level is.
logging.getLogger("peewee").setLevel(logging.WARNING)


class SchemaMissingError(RuntimeError):
    pass


def open_database(url):
    """Bind the proxy to the database at ``url`` and return it."""
    if url.startswith("sqlite"):
        db = connect(url, pragmas=SQLITE_PRAGMAS)
    else:
        db = connect(url)
    database.initialize(db)
    return db


def is_sqlite():
    return isinstance(database.obj, SqliteDatabase)


def is_postgresql():
    return isinstance(database.obj, PostgresqlDatabase)


@contextmanager
def log_lock(petition_id):
    """Serialise appends to one petition's log across processes and hosts.

    The lock lives in the database, never in process memory. SQLite takes its
    single write lock up front (BEGIN IMMEDIATE); PostgreSQL locks the
    petition's row, so different petitions append in parallel.
    """
    if is_sqlite():
        with database.atomic("IMMEDIATE"):
            yield
    else:
        with database.atomic():
            database.execute_sql("SELECT id FROM petition WHERE id = %s FOR UPDATE", (petition_id,))
            yield


def scrub_freed_space():
    """Make deleted bytes (a shredded key) unrecoverable from the database files.

    SQLite already zeroes freed space (secure_delete); old page images can
    still sit in the WAL, so checkpoint it and truncate it to nothing.
    PostgreSQL keeps dead row versions until vacuumed, so vacuum the table.
    """
    if is_sqlite():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    else:
        database.execute_sql("VACUUM FULL petition")


def create_schema():
    from . import models

    with database.connection_context():
        database.create_tables(models.ALL_MODELS, safe=True)


def check_schema():
    from . import models

    with database.connection_context():
        missing = [m._meta.table_name for m in models.ALL_MODELS if not m.table_exists()]
    if missing:
        raise SchemaMissingError(
            "the database has no tables yet (missing: " + ", ".join(missing) + "); run `signing init` first"
        )


def init_app(app):
    open_database(app.config["DATABASE_URL"])

    @app.before_request
    def _connect():
        database.connect(reuse_if_open=True)

    @app.teardown_appcontext
    def _close(_exc):
        if not database.is_closed():
            database.close()
