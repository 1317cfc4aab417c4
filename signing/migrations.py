"""Schema versions and the numbered steps between them (playhouse.migrate).

A fresh database gets every table at ``models.SCHEMA_VERSION`` at once and
that version is recorded. An existing database gets, in order, each step in
``STEPS`` whose number is above the version it records, each in its own
transaction together with the new version row, so a crash between two steps
leaves a database at a known version that the next ``signing init`` carries on
from. A database made before versions were recorded (the table empty) is at
``BASELINE_VERSION``.

Several hosts may run ``signing init`` at once against one PostgreSQL: every
step holds a transaction-level advisory lock and re-reads the version under
it, so each step runs exactly once. On SQLite, ``BEGIN IMMEDIATE`` does the
same.

To change the schema: change the model in models.py, raise SCHEMA_VERSION,
and append ``Step(N, "what it does", function)`` here, where
``function(migrator)`` brings a version N-1 database to version N, e.g.::

    def add_petition_language(migrator):
        migrate(migrator.add_column("petition", "language", CharField(max_length=8, default="en")))

    STEPS = [Step(2, "petition.language", add_petition_language)]

Steps must never import the current models to read or write rows (the
models describe the latest schema, not the one the step starts from).
"""

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
    fn,
)
from playhouse.migrate import SchemaMigrator, migrate

from crypto import keys

from . import db
from .db import database
from .models import ALL_MODELS, SCHEMA_VERSION, Petition, SchemaVersion

BASELINE_VERSION = 1
# pg_advisory_xact_lock key: "cs-migr" as a number, any constant would do.
_ADVISORY_LOCK_KEY = 0x63732D6D696772


@dataclass(frozen=True)
class Step:
    version: int  # the version this step brings the schema to
    description: str
    apply: Callable[..., None]
    # Steps that re-encrypt stored keys get the master key as a second argument.
    needs_master_key: bool = False


def add_petition_chinese_text(migrator):
    migrate(
        migrator.add_column("petition", "title_zh", CharField(max_length=200, default="")),
        migrator.add_column("petition", "body_zh", TextField(default="")),
        migrator.add_column("petition", "eligibility_zh", TextField(default="")),
    )


def add_receipt_flash(migrator):
    # The step's own copy of the table, not models.ReceiptFlash (see the docstring).
    class ReceiptFlash(Model):
        handle = CharField(max_length=64, unique=True)
        sealed = BlobField()
        expires_at = DateTimeField(index=True)

        class Meta:
            database = migrator.database
            table_name = "receipt_flash"

    migrator.database.create_tables([ReceiptFlash], safe=True)


def add_witness_tables(migrator):
    # The version-4 tables as they were then, declared here rather than taken
    # from models.py, which describes whatever the latest schema is.
    class Version4(Model):
        class Meta:
            database = migrator.database
            legacy_table_names = False

    class Cosignature(Version4):
        petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
        size = BigIntegerField()
        witness = CharField(max_length=200)
        line = TextField()
        timestamp = BigIntegerField()

        class Meta:
            indexes = ((("petition", "size", "witness"), True),)

    class WitnessReport(Version4):
        petition = ForeignKeyField(Petition, on_delete="RESTRICT")
        size = BigIntegerField()
        witness = CharField(max_length=200)
        status = IntegerField(null=True)
        message = CharField(max_length=300)
        at = DateTimeField()

    migrator.database.create_tables([Cosignature, WitnessReport], safe=True)


def rewrap_petition_keys(migrator, master_key):
    """Wrapped keys of format 1 (under the master key itself) re-wrapped under its HKDF wrapping key."""
    database = migrator.database
    rows = database.execute_sql("SELECT id, slug, wrapped_key FROM petition WHERE wrapped_key IS NOT NULL").fetchall()
    for petition_id, slug, wrapped in rows:
        if master_key is None:
            raise SchemaVersionError("re-wrapping petition keys needs the master key; run `signing init`")
        rewrapped = keys.rewrap_legacy(master_key, bytes(wrapped), slug)
        if rewrapped is not None:
            database.execute_sql(
                f"UPDATE petition SET wrapped_key = {database.param} WHERE id = {database.param}",  # noqa: S608  # nosec B608 -- the parameter marker only
                (rewrapped, petition_id),
            )


def add_organiser_two_factor_columns(migrator):
    migrate(
        migrator.add_column("organiser", "totp_pending", CharField(max_length=64, null=True)),
        migrator.add_column("organiser", "failed_codes", IntegerField(default=0)),
        migrator.add_column("organiser", "codes_locked_until", DateTimeField(null=True)),
    )


def add_petition_closed_at(migrator):
    # Skipped where the column is already there (a database made from the
    # models and recorded at an older version), like add_receipt_flash's safe=True.
    if "closed_at" not in {column.name for column in migrator.database.get_columns("petition")}:
        migrate(migrator.add_column("petition", "closed_at", DateTimeField(null=True)))


def _inbox_tables():
    """The inbox and outbox as version 8 made them (frozen here: models.py moves on)."""

    class Frozen(Model):
        class Meta:
            database = database
            legacy_table_names = False

    class Petition(Frozen):
        pass

    class Signature(Frozen):
        pass

    class Inbox(Frozen):
        petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
        channel = CharField(max_length=8, default="online")
        person_tag = BlobField(null=True)
        email_tag = BlobField(null=True)
        receipt_hash = BlobField(null=True, unique=True)
        display_name = CharField(max_length=80, null=True)
        district = CharField(max_length=8, null=True)
        sealed_contact = BlobField(null=True)
        token_hash = BlobField(null=True, unique=True)
        token_expires = DateTimeField(null=True)
        ready = BooleanField(default=False)
        settled = BooleanField(default=False)
        signature = ForeignKeyField(Signature, null=True, on_delete="CASCADE", index=False)

    class Outbox(Frozen):
        petition = ForeignKeyField(Petition, on_delete="CASCADE", index=False)
        email_tag = BlobField()
        inbox = ForeignKeyField(Inbox, null=True, on_delete="SET NULL", index=False)
        sealed = BlobField(null=True)
        attempts = IntegerField(default=0)
        not_before = DateTimeField()
        lease_until = DateTimeField(null=True)
        sent_at = DateTimeField(null=True)
        kind = CharField(max_length=16, null=True)

    Inbox.add_index(Inbox.index(Inbox.petition, Inbox.ready, Inbox.settled, name="inbox_waiting"))
    Outbox.add_index(Outbox.index(Outbox.not_before, name="outbox_due").where(Outbox.sealed.is_null(False)))
    Outbox.add_index(Outbox.index(Outbox.petition, Outbox.email_tag, name="outbox_recipient"))
    return Inbox, Outbox


def add_inbox_and_outbox(migrator):
    """Submissions settle at publish; pending signatures move to the inbox, display names page by log position.

    A pending signature's link keeps working (its token hash moves with it);
    nothing was mailed from an outbox before, so the outbox starts empty.
    """
    inbox, outbox = _inbox_tables()
    database.create_tables([inbox, outbox], safe=True)
    if "at_risk" not in {column.name for column in database.get_columns("petition")}:
        migrate(migrator.add_column("petition", "at_risk", BooleanField(default=False)))
    mark = database.param
    # Only fixed names and placeholders: the values travel as parameters.
    move = (
        'INSERT INTO "inbox" ("petition_id", "channel", "person_tag", "email_tag", "display_name", "district", '  # noqa: S608  # nosec B608
        '"sealed_contact", "token_hash", "token_expires", "ready", "settled") '
        'SELECT "petition_id", "channel", "person_tag", "email_tag", "display_name", "district", "sealed_contact", '
        f'"token_hash", "token_expires", {mark}, {mark} FROM "signature" WHERE "status" = {mark}'  # nosec B608
    )
    database.execute_sql(move, (False, False, "pending"))
    database.execute_sql(f'DELETE FROM "signature" WHERE "status" = {mark}', ("pending",))  # noqa: S608  # nosec B608
    database.execute_sql('DROP INDEX IF EXISTS "signature_display_names"')
    database.execute_sql(
        'CREATE INDEX "signature_display_names" ON "signature" ("petition_id", "leaf_index") '
        """WHERE "display_name" IS NOT NULL AND "status" = 'counted'"""
    )


STEPS: list[Step] = [
    Step(2, "petition.title_zh, body_zh, eligibility_zh (Traditional Chinese text)", add_petition_chinese_text),
    Step(3, "receipt_flash (receipt shown after a redirect, sealed)", add_receipt_flash),
    Step(4, "cosignature and witness_report tables (witnessed checkpoints)", add_witness_tables),
    Step(5, "petition keys re-wrapped under a key derived from the master key", rewrap_petition_keys, True),
    Step(
        6,
        "organiser.totp_pending (enrolment secret kept on the server), failed_codes, codes_locked_until",
        add_organiser_two_factor_columns,
    ),
    Step(7, "petition.closed_at (when it actually closed)", add_petition_closed_at),
    Step(8, "inbox and outbox; pending signatures move to the inbox; petition.at_risk", add_inbox_and_outbox),
]


class SchemaVersionError(RuntimeError):
    pass


def current_version():
    """The version the database records; None when it has no tables at all."""
    if not Petition.table_exists():
        return None
    if not SchemaVersion.table_exists():
        return BASELINE_VERSION
    recorded = SchemaVersion.select(fn.MAX(SchemaVersion.version)).scalar()
    return BASELINE_VERSION if recorded is None else recorded


@contextmanager
def _connected():
    """A connection for the block; one already open (a request's, a test's) is left open."""
    if database.is_closed():
        with database.connection_context():
            yield
    else:
        yield


@contextmanager
def _exclusive():
    """One transaction that no other migrating process runs alongside."""
    if db.is_sqlite():
        # SQLite rebuilds tables for some ALTERs; foreign keys off (only
        # possible outside a transaction) so a rebuild does not cascade.
        foreign_keys = bool(database.pragma("foreign_keys"))
        if foreign_keys:
            database.pragma("foreign_keys", 0)
        try:
            with database.atomic("IMMEDIATE"):
                yield
        finally:
            if foreign_keys:
                database.pragma("foreign_keys", 1)
    else:
        with database.atomic():
            database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK_KEY,))
            yield


def _check_steps(steps, latest):
    numbers = [step.version for step in steps]
    want = list(range(BASELINE_VERSION + 1, latest + 1))
    if numbers != want:
        raise SchemaVersionError(f"migration steps are numbered {numbers}, want {want} (up to version {latest})")


def migrate_to_latest(steps=None, latest=None, master_key=None):
    """Create or upgrade the schema; return the versions newly reached, in order (idempotent).

    ``steps`` and ``latest`` default to STEPS and SCHEMA_VERSION (tests pass
    their own). Requires a bound ``db.database``; opens a connection if none is.
    ``master_key`` is needed by steps that re-encrypt stored keys.
    """
    steps = STEPS if steps is None else steps
    latest = SCHEMA_VERSION if latest is None else latest
    _check_steps(steps, latest)
    reached = []
    with _connected():
        with _exclusive():
            version = current_version()
            if version is None:
                database.create_tables(ALL_MODELS, safe=True)
                SchemaVersion.create(version=latest)
                return [latest]
            # Databases made before versions were recorded have no table yet.
            database.create_tables([SchemaVersion], safe=True)
        for step in steps:
            if step.version <= version:
                continue
            with _exclusive():
                version = current_version()
                if step.version <= version:
                    continue  # another host applied it meanwhile
                migrator = SchemaMigrator.from_database(database)
                if step.needs_master_key:
                    step.apply(migrator, master_key)
                else:
                    step.apply(migrator)
                SchemaVersion.create(version=step.version)
                version = step.version
                reached.append(version)
        if version > latest:
            raise SchemaVersionError(f"the database is at schema version {version}, newer than this code ({latest})")
    return reached


def check_version(latest=None):
    """Raise SchemaVersionError unless the database is at ``latest`` (SCHEMA_VERSION)."""
    latest = SCHEMA_VERSION if latest is None else latest
    with _connected():
        version = current_version()
    if version is None:
        raise SchemaVersionError("the database has no tables yet; run `signing init` first")
    if version < latest:
        raise SchemaVersionError(
            f"the database is at schema version {version}, this code needs {latest}; run `signing init` to migrate it"
        )
    if version > latest:
        raise SchemaVersionError(f"the database is at schema version {version}, newer than this code ({latest})")
