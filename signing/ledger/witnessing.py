"""Asking the configured witnesses to cosign each new checkpoint (c2sp.org/tlog-witness).

``after_publish`` is called once a batch's head is stored. It captures the
signed checkpoint and, for each witness, a consistency proof from the size
that witness last cosigned, then sends them from a background thread: a
witness that is slow, down or refusing never delays a signer or a batch. The
checkpoint is served with whatever cosignatures have come back.

A cosignature is stored only after it verifies under the witness's configured
key. A refusal, or a witness that cannot be reached, is stored as a
WitnessReport and logged at ERROR: the operator sees it in the log and with
``signing witnesses``. A 409 that names the witness's size (it restarted from
a backup, or missed batches while down) is answered once more, with a proof
from that size, if the log has a head there.
"""

import atexit
import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime

from peewee import IntegrityError, fn

from crypto.errors import CryptoError
from crypto.note import AddCheckpoint, split_note, verify_cosignatures

from ..db import database
from ..models import Cosignature, WitnessReport
from . import checkpoints, logstore

log = logging.getLogger(__name__)
_MAX_RESPONSE_BYTES = 64 * 1024
_threads: list[threading.Thread] = []
_threads_lock = threading.Lock()


@dataclass(frozen=True)
class Request:
    """What one witness is sent for one checkpoint."""

    witness: checkpoints.Witness
    petition_id: int
    slug: str
    size: int
    note: str
    old_size: int
    proof: list


def after_publish(services, petition, head):
    """Send the new checkpoint to every configured witness, in the background."""
    if not services.witnesses or head is None:
        return
    note = checkpoints.signed_checkpoint(services, petition.slug, head)
    requests = [
        _request(witness, petition, head.size, note, last_cosigned(petition.id, witness.name))
        for witness in services.witnesses
    ]
    thread = threading.Thread(target=_send_all, args=(services, requests), name="witnessing", daemon=True)
    with _threads_lock:
        _threads[:] = [t for t in _threads if t.is_alive()] + [thread]
    thread.start()


def settle(timeout=30):
    """Wait for the background sends to finish (for tests, and at exit)."""
    with _threads_lock:
        pending = list(_threads)
    for thread in pending:
        thread.join(timeout)


# A command (`signing publish`, `petition close`, an import) exits right after
# publishing: let its witnesses answer first.
atexit.register(settle)


def last_cosigned(petition_id, witness_name):
    """The largest size this witness cosigned for the petition (0: none)."""
    size = (
        Cosignature.select(fn.MAX(Cosignature.size))
        .where((Cosignature.petition == petition_id) & (Cosignature.witness == witness_name))
        .scalar()
    )
    return size or 0


def _request(witness, petition, size, note, old_size):
    old_size = min(old_size, size)
    proof = [] if old_size in (0, size) else logstore.consistency_proof(petition.id, old_size, size)
    return Request(witness, petition.id, petition.slug, size, note, old_size, proof)


def _send_all(services, requests):
    with database.connection_context():
        for request in requests:
            try:
                send(services, request)
            except Exception:  # a bug here must not kill the thread's other witnesses
                log.exception("witnessing: unexpected error sending to %s", request.witness.name)


def send(services, request, retry=True):
    """Send one request; store the cosignature or a report. Returns the stored row."""
    status, content_type, body = _post(request, services.witness_timeout)
    if status == 409 and retry and content_type.startswith("text/x.tlog.size"):
        their_size = _size_line(body)
        if their_size is not None and their_size <= request.size and their_size != request.old_size:
            if their_size == 0 or logstore.head_at(request.petition_id, their_size) is not None:
                petition = _Petition(request.petition_id, request.slug)
                again = _request(request.witness, petition, request.size, request.note, their_size)
                return send(services, again, retry=False)
    if status != 200:
        return _report(request, status, _explain(status, body))
    try:
        text, _ = split_note(request.note)
        lines = split_note(request.note + body.decode("utf-8"))[1]
        confirmed = verify_cosignatures(text, lines, [request.witness.verifier])
    except (CryptoError, UnicodeDecodeError):
        return _report(request, status, "its answer is not a valid cosignature under its configured key")
    if request.witness.name not in confirmed:
        return _report(request, status, "its answer holds no cosignature from its configured key")
    own = (request.witness.name, request.witness.verifier.key_id)
    line = next(s.line() for s in lines if (s.name, s.key_id) == own)
    try:
        return Cosignature.create(
            petition=request.petition_id,
            size=request.size,
            witness=request.witness.name,
            line=line,
            timestamp=confirmed[request.witness.name],
        )
    except IntegrityError:
        return None  # already stored by another process's send of the same checkpoint


@dataclass(frozen=True)
class _Petition:
    id: int
    slug: str


def _post(request, timeout):
    """POST add-checkpoint; (status, content type, body), status None if unreachable."""
    body = AddCheckpoint(request.old_size, request.proof, request.note).body()
    http = urllib.request.Request(  # noqa: S310 -- http(s) only, checked by checkpoints.parse_witnesses
        request.witness.url + "/add-checkpoint", data=body, method="POST"
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout) as response:  # nosec B310 # noqa: S310
            return response.status, response.headers.get("Content-Type", ""), response.read(_MAX_RESPONSE_BYTES)
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read(_MAX_RESPONSE_BYTES)
    except (OSError, ValueError) as error:
        return None, "", str(getattr(error, "reason", error)).encode()


def _size_line(body):
    text = body.decode("ascii", "replace").strip()
    return int(text) if text.isdigit() and len(text) < 20 else None


_MEANING = {
    400: "refused the request as malformed",
    403: "does not trust this log's key",
    404: "does not know this log",
    409: "refused: it has seen a different or larger checkpoint (a fork, or a rollback)",
    422: "refused: the consistency proof did not verify",
}


def _explain(status, body):
    if status is None:
        return f"unreachable ({body.decode('utf-8', 'replace')[:100]})"
    meaning = _MEANING.get(status, "answered with an unexpected status")
    detail = body.decode("utf-8", "replace").strip().splitlines()[:1]
    return f"{status}: {meaning}" + (f" ({detail[0][:120]})" if detail else "")


def _report(request, status, message):
    log.error(
        "WITNESS %s did not cosign the checkpoint of petition %s at size %d: %s",
        request.witness.name,
        request.slug,
        request.size,
        message,
    )
    return WitnessReport.create(
        petition=request.petition_id,
        size=request.size,
        witness=request.witness.name,
        status=status,
        message=message[:300],
        at=datetime.now(UTC).replace(tzinfo=None),
    )


def confirmations(services, petition_id, size):
    """The configured witnesses that cosigned this size: [(display name, timestamp)], oldest first."""
    names = {w.name: w.display_name for w in services.witnesses}
    rows = checkpoints.cosignatures(petition_id, size)
    return sorted(((names[r.witness], r.timestamp) for r in rows if r.witness in names), key=lambda x: x[1])


@dataclass(frozen=True)
class Witnessed:
    """What the petition page and certificate say about the latest count's witnesses."""

    configured: int  # witnesses the instance asks
    size: int  # the latest head's size
    confirmed: list  # [(display name, datetime UTC)], oldest first


def summary(services, petition):
    """The latest head's cosignatures from configured witnesses; None when none are configured."""
    if not services.witnesses:
        return None
    head = logstore.latest_head(petition.id)
    size = 0 if head is None else head.size
    confirmed = [] if head is None else confirmations(services, petition.id, size)
    when = [(name, datetime.fromtimestamp(timestamp, UTC)) for name, timestamp in confirmed]
    return Witnessed(len(services.witnesses), size, when)


def recent_reports(limit=20):
    """The latest refusals and failures, newest first, with their petition's slug: for the operator."""
    return list(WitnessReport.select().order_by(WitnessReport.id.desc()).limit(limit))
