"""Audit bundles served from files, so a slow download holds no database snapshot.

A bundle (every signed head and every leaf) can take a slow client minutes
to read. Streamed from the database, that reader would keep one transaction,
one snapshot and one worker thread the whole time, and a snapshot kept open
stops shredding from proving a key gone. Instead each head's bundle is
written once, on the first request after its batch, to a file in the
instance folder (``bundles/``), then sent with ``send_file`` (the server's
sendfile where it has one). Older files of the petition are removed as a new
one appears; a reader already sending one keeps its open file.

Each process sends at most ``AUDIT_BUNDLE_READERS`` bundles at once (a setting,
1 by default, so with two threads a worker always has one for signers); more get a 503
with Retry-After, which the verifier tool and browsers retry.
"""

import io
import os
import secrets
import threading
from pathlib import Path

from flask import current_app, send_file

from ..ledger import logstore

_EXTENSION = "countersign.bundle_readers"


class TooManyReaders(Exception):
    """Every bundle slot of this process is taken."""


def _readers(app):
    slots = app.extensions.get(_EXTENSION)
    if slots is None:
        slots = app.extensions.setdefault(
            _EXTENSION, threading.BoundedSemaphore(app.config["AUDIT_BUNDLE_READERS"])
        )
    return slots


def bundle_folder(app):
    return Path(app.instance_path) / "bundles"


def bundle_path(app, petition, size, key_id):
    return bundle_folder(app) / f"{petition.id}-{petition.slug}-{key_id}-{size}.jsonl"


def send_bundle(petition, key_id, lines_of):
    """The response sending the bundle of ``petition``'s latest head; ``lines_of(heads)``
    yields its lines. Raises TooManyReaders when no slot is free."""
    app = current_app._get_current_object()
    slots = _readers(app)
    if not slots.acquire(blocking=False):
        raise TooManyReaders()
    try:
        heads = logstore.all_heads(petition.id)
        path = bundle_path(app, petition, heads[-1].size if heads else 0, key_id)
        if not path.exists():
            _write_once(path, lines_of(heads))
        held = _HeldFile(path, slots.release)
    except BaseException:
        slots.release()
        raise
    # From here the slot is the open file's: the server closes it when the
    # reader is done or gone (WSGI), and garbage collection as a last resort.
    return send_file(
        held,
        mimetype="application/x-ndjson",
        as_attachment=True,
        download_name=f"{petition.slug}-bundle.jsonl",
        conditional=False,
        etag=False,
    )


class _HeldFile(io.FileIO):
    """The bundle file, holding a reader slot until it is closed."""

    def __init__(self, path, release):
        self._release = release
        super().__init__(path, "rb")

    def close(self):
        try:
            super().close()
        finally:
            release, self._release = self._release, None
            if release is not None:
                release()


def _write_once(path, lines):
    path.parent.mkdir(mode=0o700, exist_ok=True)
    # Written aside, then renamed: a reader never sees half a file, and two
    # processes writing the same head's bundle at once both write it whole.
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        with open(partial, "wb") as f:
            for line in lines:
                f.write(line)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    _remove_older(path)


def _remove_older(path):
    petition_prefix = path.name.split("-", 1)[0] + "-"
    for other in path.parent.glob(f"{petition_prefix}*.jsonl"):
        if other != path:
            other.unlink(missing_ok=True)
