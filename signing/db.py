"""The database: chosen by URL, one connection per request, schema creation.

SQLite is the embedded default. It runs in WAL mode (readers never wait for
the writer) with ``secure_delete`` so a shredded key's bytes are overwritten,
not left in a free page. Every transaction there begins IMMEDIATE: one that
read first and then wrote would have to upgrade its read snapshot, and when
another writer committed in between SQLite refuses at once ("database is
locked") instead of waiting out the busy timeout. PostgreSQL is chosen with a ``postgresql://`` URL;
nothing else in the code knows which engine it talks to.
"""

import logging
import re
import time
from contextlib import contextmanager
from pathlib import Path

from peewee import DatabaseProxy, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.db_url import connect
from playhouse.pool import PooledDatabase

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


# Each worker process keeps its PostgreSQL connections between requests: a
# new connection forks a server process (about 5 ms here), more than a whole
# petition page costs. Idle ones are dropped after stale_timeout seconds.
POSTGRES_POOL = {"max_connections": 32, "stale_timeout": 300, "timeout": 10}
SQLITE_POOL = {"max_connections": 32, "stale_timeout": 300, "timeout": 10, "check_same_thread": False}
# BEGIN IMMEDIATE for every atomic() block, wherever it is (module docstring).
SQLITE_OPTIONS = {"pragmas": SQLITE_PRAGMAS, "lock_type": "IMMEDIATE"}


def open_database(url):
    """Bind the proxy to the database at ``url`` and return it."""
    if url.startswith("sqlite:///"):
        db = connect(url.replace("sqlite://", "sqlite+pool://", 1), **SQLITE_OPTIONS, **SQLITE_POOL)
    elif url.startswith("sqlite"):
        db = connect(url, **SQLITE_OPTIONS)
    elif url.startswith(("postgresql://", "postgres://")):
        db = connect(url.replace("://", "+pool://", 1), **POSTGRES_POOL)
    else:
        db = connect(url)
    if isinstance(database.obj, PooledDatabase):
        database.obj.close_all()  # rebinding (tests, `demo`): let go of the old pool's connections
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


class PreparedSelect:
    """A SELECT of one model's fields, compiled to SQL once per database, then run with new parameters.

    peewee builds the SQL text of every query anew, and turns each row into a
    model through a general-purpose cursor wrapper; for a wide model both
    cost more CPU than the database's own work, and the signing path runs
    the same few look-ups on every request. ``build`` takes placeholder
    values (one per parameter) and returns the query; each is swapped for the
    value given to ``first`` or ``all``. Rows become models with the fields'
    own converters, as peewee's wrapper would make them.
    """

    def __init__(self, model, build, arity=1):
        self._model, self._build, self._arity = model, build, arity
        self._compiled = {}

    def _prepared(self):
        key = id(database.obj)
        if key not in self._compiled:
            marks = [f"\x00prepared {number}\x00" for number in range(self._arity)]
            query = self._build(*marks)
            columns = [(field.name, field.python_value) for field in query._returning]
            if any(getattr(field, "model", None) is not self._model for field in query._returning):
                raise TypeError("PreparedSelect selects fields of its own model only")
            sql, params = query.sql()
            order = [marks.index(param) if param in marks else None for param in params]
            self._compiled = {key: (sql, params, order, columns)}
        return self._compiled[key]

    def all(self, *values):
        sql, params, order, columns = self._prepared()
        bound = [param if slot is None else values[slot] for param, slot in zip(params, order, strict=True)]
        found = []
        for row in database.execute_sql(sql, bound).fetchall():
            data = {name: convert(value) for (name, convert), value in zip(columns, row, strict=True)}
            instance = self._model(__no_default__=1, **data)
            instance._dirty.clear()  # as read: nothing to save
            found.append(instance)
        return found

    def first(self, *values):
        found = self.all(*values)
        return found[0] if found else None


def insert_unless_taken(model, unique_fields, **values):
    """INSERT one row unless another already holds its ``unique_fields``; True if it was inserted.

    ``ON CONFLICT (…) DO NOTHING`` in both engines, rather than letting the
    INSERT fail on the unique index: PostgreSQL writes every failed statement
    to its server log, values included, which is not ours to keep clean. Any
    other constraint still fails as before.
    """
    query = model.insert(**values).on_conflict(conflict_target=unique_fields, action="nothing")
    return query.as_rowcount().execute() == 1


# (engine, model, columns, returning id) -> SQL text; a few entries per process.
_INSERT_SQL = {}


def _insert_sql(model, columns, returning_id=False):
    """``INSERT INTO table (columns) VALUES (placeholders)``, built once per engine."""
    key = (type(database.obj), model, columns, returning_id)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        table = model._meta.table_name
        names = ", ".join(f'"{model._meta.fields[name].column_name}"' for name in columns)
        marks = ", ".join([database.param] * len(columns))
        sql = f'INSERT INTO "{table}" ({names}) VALUES ({marks})'  # noqa: S608  # nosec B608 -- names come from the models
        if returning_id and is_postgresql():
            sql += ' RETURNING "id"'
        _INSERT_SQL[key] = sql
    return sql


def insert_row(model, **values):
    """INSERT one row and return its id, with SQL text built once per model and column set.

    ``Model.create`` compiles the statement anew every time, which for the
    signing path's two inserts cost more CPU than SQLite's own work. Fields
    left out take the model's defaults, as with ``create``; values go through
    each field's ``db_value``.
    """
    fields = model._meta.fields
    for field, default in model._meta.defaults.items():
        if field.name not in values:
            values[field.name] = default() if callable(default) else default
    columns = tuple(values)
    params = [fields[name].db_value(value) for name, value in values.items()]
    cursor = database.execute_sql(_insert_sql(model, columns, returning_id=True), params)
    return cursor.fetchone()[0] if is_postgresql() else cursor.lastrowid


def bulk_insert(model, columns, rows, chunk=1000):
    """Insert many rows of plain values with executemany.

    peewee's insert_many renders every value into the SQL text, which costs
    more than the database's own work for the thousands of log rows a batch
    writes. ``columns`` are field names; ``rows`` tuples in that order.
    """
    sql = _insert_sql(model, tuple(columns))
    cursor = database.cursor()
    for start in range(0, len(rows), chunk):
        cursor.executemany(sql, rows[start : start + chunk])


class ScrubIncomplete(RuntimeError):
    """Deleted bytes could not be proven gone from the database's files; the message says why."""


_DEAD_KEPT_RE = re.compile(r"(\d+) dead row versions cannot be removed yet")


def scrub_freed_space(secret=None, wait_seconds=60.0, sleep=time.sleep):
    """Make deleted bytes (a shredded key) unrecoverable from the database, and prove it.

    SQLite zeroes freed space (secure_delete), but old page images stay in the
    WAL until a checkpoint copies every frame back and truncates the WAL to
    nothing, which a reader holding an older snapshot prevents. PostgreSQL
    keeps dead row versions until a vacuum, and a vacuum keeps those an older
    snapshot may still see. Either way: retry until ``wait_seconds`` have
    passed, then raise ScrubIncomplete saying what holds the bytes. With
    ``secret`` given, the files (SQLite) or the table's pages (PostgreSQL,
    where readable) are searched for it as well.
    Returns the places checked, for the operator.
    """
    deadline = time.monotonic() + wait_seconds
    scrub = _scrub_sqlite if is_sqlite() else _scrub_postgresql
    while True:
        try:
            return scrub(secret, max(0.0, deadline - time.monotonic()))
        except ScrubIncomplete:
            if time.monotonic() >= deadline:
                raise
            sleep(0.2)


def _scrub_sqlite(secret, remaining):
    path = database.obj.database
    previous = database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
    # Each try waits at most a second for readers, so the overall bound holds.
    database.execute_sql(f"PRAGMA busy_timeout = {int(min(remaining, 1.0) * 1000)}")
    try:
        busy, _log, _checkpointed = database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        database.execute_sql(f"PRAGMA busy_timeout = {int(previous)}")
    wal = Path(f"{path}-wal")
    if busy or (wal.exists() and wal.stat().st_size):
        raise ScrubIncomplete(
            f"an older copy is still in {wal}: another connection holds a read snapshot "
            "(a long request, or another program with the database open)"
        )
    places = [Path(path), wal, Path(f"{path}-shm")]
    if secret is not None:
        for place in places:
            if _file_holds(place, secret):
                raise ScrubIncomplete(f"the bytes are still in {place}")
    return [str(place) for place in places]


def _file_holds(path, secret, chunk=1 << 20):
    try:
        with open(path, "rb") as f:
            tail = b""
            while block := f.read(chunk):
                if secret in tail + block:
                    return True
                tail = block[-(len(secret) - 1) :]
    except FileNotFoundError:
        return False
    return False


def _scrub_postgresql(secret, remaining):
    connection = database.connection()
    del connection.notices[:]
    # VACUUM FULL locks the table exclusively: give up quickly rather than
    # queue every page view behind a reader.
    database.execute_sql(f"SET lock_timeout = {int(max(remaining, 0.1) * 1000)}")
    try:
        database.execute_sql("VACUUM (FULL, VERBOSE) petition")
    except OperationalError as error:
        raise ScrubIncomplete(
            "the petition table could not be vacuumed: a reader's transaction holds it "
            f"(see pg_stat_activity for long transactions; {error.__class__.__name__})"
        ) from None
    finally:
        database.execute_sql("RESET lock_timeout")
    kept = [int(n) for n in _DEAD_KEPT_RE.findall("".join(connection.notices))]
    if not kept or any(kept):
        raise ScrubIncomplete(
            "an older row version of the petition is kept by a transaction that began before the shred "
            "(see pg_stat_activity for long transactions)"
        )
    if secret is not None and _petition_pages_hold(secret):
        raise ScrubIncomplete("the bytes are still in a row version of the petition table")
    return ["petition table (live and dead row versions)"]


def _petition_pages_hold(secret):
    """Search every tuple on the petition table's pages, if pageinspect is installed (superuser)."""
    installed = database.execute_sql("SELECT 1 FROM pg_extension WHERE extname = 'pageinspect'").fetchone()
    if not installed:
        return False
    found = database.execute_sql(
        "SELECT count(*) FROM generate_series(0, pg_relation_size('petition') / current_setting('block_size')::int - 1)"
        " AS block, heap_page_items(get_raw_page('petition', block::int)) AS item"
        " WHERE position(%s IN item.t_data) > 0",
        (secret,),
    ).fetchone()[0]
    return found > 0


def init_app(app):
    open_database(app.config["DATABASE_URL"])

    # No connection is opened up front: peewee connects on a request's first
    # query, so a page served from the page cache never touches the database.
    @app.teardown_appcontext
    def _close(_exc):
        if not database.is_closed():
            database.close()
