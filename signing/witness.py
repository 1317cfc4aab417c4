"""A witness anyone can run (c2sp.org/tlog-witness): ``signing witness``.

A small separate server with its own SQLite file and its own Ed25519 key. For
each log it is configured for (by the log's verifier key, whose name is the
log's origin) it keeps the latest checkpoint it verified and cosigned; it
cosigns a new one only if it is signed by that log's key and proved
consistent with the last. It answers as the spec says:

- 400 malformed request, or old size above the checkpoint's size;
- 404 unknown origin;  403 no signature from the log's key verifies;
- 409 old size is not the size it last cosigned (body: that size, as
  ``text/x.tlog.size``), or same size with a different root (a fork);
- 422 the consistency proof does not verify;
- 200 one ``cosignature/v1`` line.

Checking the old size and recording the new checkpoint happen in one SQLite
write transaction, so two requests cannot roll each other back. Refused
requests whose log signature verifies are kept (``evidence`` table): a
checkpoint inconsistent with one the witness cosigned is signed proof of a
fork (``signing-audit compare``).

Nothing here knows about petitions: it witnesses any C2SP log with Ed25519
checkpoints, and Countersign's logs can be witnessed by any witness.
"""

import os
import sqlite3
import time
from contextlib import closing

from flask import Flask, Response, request

from crypto import keys
from crypto.errors import CryptoError, InvalidBundle, InvalidProof, InvalidSignature
from crypto.merkle import verify_consistency
from crypto.note import AddCheckpoint, Checkpoint, Verifier, cosign, open_note, public_bytes, split_note

KEY_FILE = "witness.key"
DATABASE_FILE = "witness.db"
SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS evidence (
    id INTEGER PRIMARY KEY,
    origin TEXT NOT NULL,
    status INTEGER NOT NULL,
    reason TEXT NOT NULL,
    note TEXT NOT NULL,
    at INTEGER NOT NULL
);
"""


class Refusal(Exception):
    def __init__(self, status, message, body=None, content_type="text/plain; charset=utf-8"):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else message + "\n"
        self.content_type = content_type


def load_or_create_key(state_dir):
    path = os.path.join(state_dir, KEY_FILE)
    if not os.path.exists(path):
        keys.create_log_key_file(path)
    return keys.load_log_key(path)


def vkey(name, key):
    """The witness's verifier key, as logs and auditors configure it."""
    return Verifier(name, 4, public_bytes(key)).vkey


class Witness:
    """The witness's state and rules, apart from HTTP (tests drive it directly too)."""

    def __init__(self, state_dir, name, log_vkeys, clock=time.time):
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.name = name
        self.key = load_or_create_key(state_dir)
        self.database = os.path.join(state_dir, DATABASE_FILE)
        self.clock = clock
        self.logs = {}
        for text in log_vkeys:
            verifier = Verifier.from_vkey(text)
            self.logs[verifier.name] = verifier
        with closing(self._connect()) as connection:
            connection.executescript(SCHEMA)

    def _connect(self):
        connection = sqlite3.connect(self.database, timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")  # persisted before we answer, as the spec asks
        return connection

    def add_checkpoint(self, body):
        """Handle one add-checkpoint body; return the cosignature line or raise Refusal."""
        try:
            request_ = AddCheckpoint.parse(body)
            text, _ = split_note(request_.note)
            checkpoint = Checkpoint.parse(text, extensions=True)
        except InvalidBundle as exc:
            raise Refusal(400, f"malformed request: {exc}") from None
        log = self.logs.get(checkpoint.origin)
        if log is None:
            raise Refusal(404, "unknown log origin")
        try:
            open_note(request_.note, [log])
        except CryptoError:
            raise Refusal(403, "no signature from the log's key verifies") from None
        if request_.old_size > checkpoint.size:
            raise Refusal(400, "old size is above the checkpoint's size")
        with closing(self._connect()) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                line = self._check_and_record(connection, request_, text, checkpoint)
            except Refusal as refusal:
                connection.execute(
                    "INSERT INTO evidence (origin, status, reason, note, at) VALUES (?, ?, ?, ?, ?)",
                    (checkpoint.origin, refusal.status, str(refusal), request_.note, int(self.clock())),
                )
                connection.execute("COMMIT")
                raise
            connection.execute("COMMIT")
        return line

    def _check_and_record(self, connection, request_, text, checkpoint):
        row = connection.execute("SELECT size, root FROM latest WHERE origin = ?", (checkpoint.origin,)).fetchone()
        size, root = (row[0], bytes(row[1])) if row else (0, None)
        if request_.old_size != size:
            raise Refusal(409, f"old size {request_.old_size} is not {size}", f"{size}\n", "text/x.tlog.size")
        if size == checkpoint.size:
            if root is not None and root != checkpoint.root:
                raise Refusal(409, f"a different root for size {size}: the log has forked")
            if request_.proof:
                raise Refusal(422, "a consistency proof between equal sizes is empty")
        elif size == 0:
            if request_.proof:
                raise Refusal(422, "a consistency proof from size 0 is empty")
        else:
            try:
                verify_consistency(size, checkpoint.size, root, checkpoint.root, request_.proof)
            except (InvalidProof, InvalidSignature):
                raise Refusal(422, "the consistency proof does not verify") from None
        line = cosign(self.key, self.name, text, int(self.clock())).line()
        connection.execute(
            "INSERT INTO latest (origin, size, root, note) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note",
            (checkpoint.origin, checkpoint.size, checkpoint.root, request_.note + line),
        )
        return line

    def latest(self, origin):
        """The note last cosigned for ``origin``, with this witness's cosignature, or None."""
        with closing(self._connect()) as connection:
            row = connection.execute("SELECT note FROM latest WHERE origin = ?", (origin,)).fetchone()
        return row[0] if row else None


def create_witness_app(witness):
    """The witness's HTTP interface: POST /add-checkpoint, GET /latest?origin=... (its last cosigned note)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024

    @app.post("/add-checkpoint")
    def add_checkpoint():
        try:
            line = witness.add_checkpoint(request.get_data())
        except Refusal as refusal:
            return Response(refusal.body, status=refusal.status, content_type=refusal.content_type)
        return Response(line, status=200, content_type="text/plain; charset=utf-8")

    @app.get("/latest")
    def latest():
        note = witness.latest(request.args.get("origin", ""))
        if note is None:
            return Response("no checkpoint for that origin\n", status=404, content_type="text/plain; charset=utf-8")
        return Response(note, content_type="text/plain; charset=utf-8")

    @app.get("/vkey")
    def public_vkey():
        return Response(vkey(witness.name, witness.key) + "\n", content_type="text/plain; charset=utf-8")

    return app
