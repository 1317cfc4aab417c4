"""Auditor-facing JSON API under ``/p/<slug>/audit/`` (DESIGN §7).

Everything here is public and read-only: the log key, every signed head,
the leaves, proofs, and the bundle that ``signing-audit verify`` checks
offline. Bad parameters get a 400 with a message naming the parameter.
"""

import json

from flask import Blueprint, Response, abort, current_app, request

from crypto.audit import BUNDLE_FORMAT

from ..ledger import checkpoints, logstore
from . import bundlefiles, lookup
from .errors import render_error
from .lookup import cacheable, services

bp = Blueprint("audit", __name__)

MAX_LEAVES_PER_PAGE = 1000
AUDIT_MAX_AGE_SECONDS = 10
_MAX_INDEX = 2**53  # beyond any real log; keeps numbers exact in JSON


def keyring():
    return services().keyring


def petition_or_404(slug):
    return lookup.petition_or_404(slug, description=f"no petition {slug!r}")


def int_arg(name, minimum=0):
    raw = request.args.get(name)
    if raw is None:
        abort(400, description=f"missing parameter {name!r}")
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 16):
        abort(400, description=f"parameter {name!r} must be a whole number")
    value = int(raw)
    if not minimum <= value <= _MAX_INDEX:
        abort(400, description=f"parameter {name!r} must be at least {minimum}")
    return value


def public(payload):
    return cacheable(current_app.json.response(payload), AUDIT_MAX_AGE_SECONDS)


def key_document():
    ring = keyring()
    return {
        "algorithm": "Ed25519",
        "public_key": ring.log_public_key.hex(),
        "key_id": ring.log_key_id,
        # Each petition's checkpoints name their log "<origin_prefix>/<slug>".
        "origin_prefix": services().log_origin,
        "witnesses": [
            {"name": w.display_name, "vkey": w.verifier.vkey} for w in services().witnesses
        ],
    }


def petition_key_document(slug):
    """The instance key, plus this petition's checkpoint origin and verifier key (c2sp.org/signed-note)."""
    document = key_document()
    verifier = checkpoints.verifier(services(), slug)
    document.update(origin=verifier.name, vkey=verifier.vkey)
    return document


def head_document(row, slug):
    return {"head": logstore.signed_head(row, slug).to_dict(), "signature": bytes(row.signature).hex()}


def latest_size(petition):
    head = logstore.latest_head(petition.id)
    return head.size if head else 0


@bp.get("/audit/key")
def instance_key():
    return public(key_document())


@bp.get("/p/<slug>/audit/key")
def key(slug):
    petition_or_404(slug)
    return public(petition_key_document(slug))


def note_response(text):
    response = Response(text, mimetype="text/plain")
    response.charset = "utf-8"
    return cacheable(response, AUDIT_MAX_AGE_SECONDS)


@bp.get("/p/<slug>/audit/checkpoint")
def checkpoint(slug):
    """The latest head as a C2SP tlog-checkpoint, with the witnesses' cosignatures."""
    petition = petition_or_404(slug)
    head = logstore.latest_head(petition.id)
    if head is None:
        abort(404, description="this petition's log has no signed head yet")
    return note_response(checkpoints.cosigned_checkpoint(services(), petition, head))


@bp.get("/p/<slug>/audit/checkpoint/<int:size>")
def checkpoint_at(slug, size):
    """The checkpoint of the signed head of one size, with its cosignatures."""
    petition = petition_or_404(slug)
    return note_response(checkpoints.cosigned_checkpoint(services(), petition, head_or_404(petition, size)))


@bp.get("/p/<slug>/audit/heads")
def heads(slug):
    petition = petition_or_404(slug)
    rows = logstore.all_heads(petition.id)
    return public({"petition": slug, "heads": [head_document(row, slug) for row in rows]})


@bp.get("/p/<slug>/audit/head/<int:size>")
def head(slug, size):
    return public(head_document(head_or_404(petition_or_404(slug), size), slug))


def head_or_404(petition, size):
    row = logstore.head_at(petition.id, size)
    if row is None:
        abort(404, description=f"no signed head of size {size}")
    return row


@bp.get("/p/<slug>/audit/leaves")
def leaves(slug):
    petition = petition_or_404(slug)
    start, end = int_arg("start"), int_arg("end")
    size = latest_size(petition)
    if not start < end <= size:
        abort(400, description=f"need start < end <= {size} (the log's size)")
    if end - start > MAX_LEAVES_PER_PAGE:
        abort(400, description=f"at most {MAX_LEAVES_PER_PAGE} leaves per request")
    data = [leaf.decode("utf-8") for leaf in logstore.iter_leaves(petition.id, start, end)]
    return public({"petition": slug, "start": start, "end": end, "leaves": data})


@bp.get("/p/<slug>/audit/proof/inclusion")
def inclusion(slug):
    petition = petition_or_404(slug)
    index, size = int_arg("index"), int_arg("size", minimum=1)
    latest = latest_size(petition)
    if not index < size <= latest:
        abort(400, description=f"need index < size <= {latest} (the log's size)")
    proof = logstore.inclusion_proof(petition.id, index, size)
    return public({"index": index, "size": size, "proof": [node.hex() for node in proof]})


@bp.get("/p/<slug>/audit/proof/consistency")
def consistency(slug):
    petition = petition_or_404(slug)
    first, second = int_arg("first", minimum=1), int_arg("second", minimum=1)
    latest = latest_size(petition)
    if not first <= second <= latest:
        abort(400, description=f"need 0 < first <= second <= {latest} (the log's size)")
    proof = logstore.consistency_proof(petition.id, first, second)
    return public({"first": first, "second": second, "proof": [node.hex() for node in proof]})


def bundle_lines(petition, rows):
    """The bundle of the heads ``rows``, line by line (format in crypto/audit.py)."""
    ring = keyring()
    header = {
        "format": BUNDLE_FORMAT,
        "petition": petition.slug,
        "public_key": ring.log_public_key.hex(),
        "key_id": ring.log_key_id,
    }
    yield _json_line(header)
    for row in rows:
        yield _json_line(head_document(row, petition.slug))
    # Leaves below a signed head never change, so reading them after the
    # heads (even while a batch is appended) still gives a consistent bundle.
    size = rows[-1].size if rows else 0
    for leaf in logstore.iter_leaves(petition.id, 0, size):
        yield leaf + b"\n"


def _json_line(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode() + b"\n"


@bp.get("/p/<slug>/audit/bundle")
def bundle(slug):
    petition = petition_or_404(slug)
    try:
        response = bundlefiles.send_bundle(petition, keyring().log_key_id, lambda rows: bundle_lines(petition, rows))
    except bundlefiles.TooManyReaders:
        body, status = render_error(503)
        return body, status, {"Retry-After": "5"}
    return cacheable(response, AUDIT_MAX_AGE_SECONDS)
