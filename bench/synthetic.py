"""Synthetic petitions of any size, inserted directly (no Argon2id), with a real log.

Each synthetic signature is an online signature with random 32-byte tags, a
receipt digest, every tenth one a public display name, and its leaf in the
petition's Merkle log; the log's complete-subtree ``Node`` rows come from
``crypto.merkle.Frontier.append``, exactly as ``logstore.append_leaves``
writes them, and the latest head is signed with the instance's log key. So
every page, receipt check and proof works on it as on a real petition.

Rows go in with the engine's bulk path (SQLite: executemany in large
transactions; PostgreSQL: COPY), with every index the schema defines already
in place, as a real petition's rows would be.

The same pass can write an audit bundle of the log (``signing-audit``
format) with a signed head every ``head_every`` leaves.
"""

import io
import json
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from crypto import merkle
from crypto.audit import BUNDLE_FORMAT
from crypto.leaves import signature_leaf
from crypto.receipts import new_receipt, parse_receipt, receipt_digest
from crypto.treehead import TreeHead as SignedHead
from crypto.treehead import format_minute, sign_head
from signing import create_app, db, keyring, ledger, migrations
from signing.ledger import logstore
from signing.models import COUNTED, ONLINE, Leaf, Node, Petition, Signature

SLUG = "scale"
CHUNK_LEAVES = 50_000


@dataclass
class SyntheticPetition:
    database_url: str
    instance: str
    size: int
    receipts: dict = field(default_factory=dict)  # leaf index -> receipt code (a sample)
    bundle_path: str | None = None
    heads: int = 0


def app_for(instance, database_url, **overrides):
    config = {
        "INSTANCE_PATH": str(instance),
        "DATABASE_URL": database_url,
        "PUBLISH_INTERVAL_SECONDS": 3600,
        "PAGE_CACHE_SECONDS": 0,  # measure the real work, not the cache
        "WTF_CSRF_ENABLED": False,
        "RATE_LIMITS_ENABLED": False,
        "DEVELOPMENT": True,
    }
    config.update(overrides)
    return create_app(config)


def _defaults(model, given):
    """Column names and a row template: every column the model has, defaults filled in."""
    columns, template = [], []
    for f in model._meta.sorted_fields:
        if f.name == "id":
            continue
        columns.append(f.column_name)
        if f.name in given:
            template.append(given[f.name])
        elif f.default is not None:
            template.append(f.default() if callable(f.default) else f.default)
        else:
            template.append(None)
    return columns, template


class _Writer:
    """Bulk rows into one table, by the engine's fastest ordinary path."""

    def __init__(self, model, columns):
        self.table = model._meta.table_name
        self.columns = columns
        self.quoted = ", ".join(f'"{name}"' for name in columns)  # "index" is an SQL keyword
        self.postgres = db.is_postgresql()

    def write(self, rows):
        if not rows:
            return
        if self.postgres:
            buffer = io.StringIO()
            for row in rows:
                buffer.write("\t".join(_copy_text(value) for value in row))
                buffer.write("\n")
            buffer.seek(0)
            cursor = db.database.cursor()
            cursor.copy_expert(f'COPY "{self.table}" ({self.quoted}) FROM STDIN', buffer)
        else:
            # Rows arrive with SQLite-ready values (see build): no conversion here.
            marks = ", ".join("?" for _ in self.columns)
            db.database.connection().executemany(
                f'INSERT INTO "{self.table}" ({self.quoted}) VALUES ({marks})',  # noqa: S608 -- names from the models
                rows,
            )


def _copy_text(value):
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _sqlite_value(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def build(instance, database_url, size, sample=300, bundle_path=None, head_every=1000, seed=1):
    """Create a petition of ``size`` counted, logged signatures; return what the benchmarks need."""
    rng = random.Random(seed)
    keyring.create_missing(os.path.join(instance, "master.key"), os.path.join(instance, "log.key"))
    db.open_database(database_url)
    migrations.migrate_to_latest()
    app = app_for(instance, database_url)
    services = app.extensions["countersign"]
    keys = services.keyring
    now = datetime.now(UTC)
    today = now.date()
    sampled = set(rng.sample(range(size), min(sample, size)))
    result = SyntheticPetition(database_url, str(instance), size, bundle_path=bundle_path)

    with app.app_context(), db.database.connection_context():
        petition = ledger.create_petition(
            services, slug=SLUG, title="A petition at scale", body="Synthetic signatures.", require_email=False
        )
        signature_columns, signature_template = _defaults(
            Signature,
            {"petition": petition.id, "channel": ONLINE, "status": COUNTED, "day": today, "district": "S1"},
        )
        if not db.is_postgresql():
            signature_template = [_sqlite_value(value) for value in signature_template]
        position = {
            name: signature_columns.index(Signature._meta.fields[name].column_name)
            for name in ("person_tag", "email_tag", "receipt_hash", "display_name", "leaf_index")
        }
        signatures = _Writer(Signature, signature_columns)
        leaves = _Writer(Leaf, ["petition_id", "index", "data"])
        nodes = _Writer(Node, ["petition_id", "level", "index", "hash"])

        frontier = merkle.Frontier()
        heads = []
        leaf_file = open(bundle_path + ".leaves", "wb") if bundle_path else None  # noqa: SIM115
        try:
            for start in range(0, size, CHUNK_LEAVES):
                end = min(size, start + CHUNK_LEAVES)
                randomness = os.urandom(64 * (end - start))
                signature_rows, leaf_rows, node_rows = [], [], []
                for i in range(start, end):
                    offset = 64 * (i - start)
                    person = randomness[offset : offset + 32]
                    if i in sampled:
                        code = new_receipt()
                        result.receipts[i] = code
                        receipt = receipt_digest(parse_receipt(code))
                    else:
                        receipt = randomness[offset + 32 : offset + 64]
                    data = signature_leaf(ONLINE, person, None, receipt, today)
                    row = list(signature_template)
                    row[position["person_tag"]] = person
                    row[position["receipt_hash"]] = receipt
                    row[position["leaf_index"]] = i
                    if i % 10 == 0:
                        row[position["display_name"]] = f"Supporter {i}"
                    signature_rows.append(row)
                    leaf_rows.append((petition.id, i, data))
                    for level, index, digest in frontier.append(merkle.leaf_hash(data)):
                        node_rows.append((petition.id, level, index, digest))
                    if leaf_file is not None:
                        leaf_file.write(data + b"\n")
                        if (i + 1) % head_every == 0 or i + 1 == size:
                            heads.append(SignedHead(SLUG, i + 1, frontier.root(), i + 1, format_minute(now)))
                with db.database.atomic():
                    signatures.write(signature_rows)
                    leaves.write(leaf_rows)
                    nodes.write(node_rows)
        finally:
            if leaf_file is not None:
                leaf_file.close()
        with db.database.atomic():
            logstore.store_head(petition, size, frontier.root(), size, keys, now)
        if bundle_path:
            _write_bundle(bundle_path, keys, heads)
            result.heads = len(heads)
        assert Petition.get(Petition.slug == SLUG).id == petition.id
    db.database.close()
    return result


def _write_bundle(path, keys, heads):
    with open(path, "wb") as bundle:
        header = {
            "format": BUNDLE_FORMAT,
            "petition": SLUG,
            "public_key": keys.log_public_key.hex(),
            "key_id": keys.log_key_id,
        }
        bundle.write(json.dumps(header, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        for head in heads:
            line = {"head": head.to_dict(), "signature": sign_head(keys.log_key, head).hex()}
            bundle.write(json.dumps(line, sort_keys=True, separators=(",", ":")).encode() + b"\n")
        with open(path + ".leaves", "rb") as leaves:
            while chunk := leaves.read(1 << 20):
                bundle.write(chunk)
    os.remove(path + ".leaves")


def database_bytes():
    """Bytes the bound database occupies on disk (SQLite file after a checkpoint; PostgreSQL database size)."""
    with db.database.connection_context():
        if db.is_postgresql():
            db.database.execute_sql("VACUUM ANALYZE")
            return db.database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
        db.database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = db.database.execute_sql("PRAGMA page_count").fetchone()[0]
        page_size = db.database.execute_sql("PRAGMA page_size").fetchone()[0]
        return pages * page_size
