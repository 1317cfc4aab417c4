"""Work done outside any request: sending the mail outbox, publishing batches on schedule.

Each worker process starts one daemon thread, lazily, at its first request
(after gunicorn forked it). Several workers and hosts may run it at once:
mail rows are claimed with a lease (ledger/mailqueue.py) and batches are
published under the log lock. For cron, `signing send-mail` and
`signing publish` do the same once.
"""

import logging
import os
import threading
import time
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from flask import has_app_context, has_request_context

from . import db, ledger
from .ledger import mailqueue
from .ledger.errors import MailError

log = logging.getLogger("countersign.background")

POLL_SECONDS = 1.0
_started = {}
_start_lock = threading.Lock()
_running = []  # apps whose thread this process started, for stop_all


@contextmanager
def _connected():
    """A connection for the block; one already open (the CLI's, a test's) is left open."""
    if db.database.is_closed():
        with db.database.connection_context():
            yield
    else:
        yield


def _app_context(app):
    # A context of our own is popped with a teardown that closes the database
    # connection: never do that under a caller's (the CLI's, a request's).
    return nullcontext() if has_app_context() else app.app_context()


def _request_context(app):
    """For templates and the locale of the mail; reuses the caller's app context if there is one."""
    return nullcontext() if has_request_context() else app.test_request_context()


def lease_for(app):
    """Long enough for one whole SMTP conversation, and then some."""
    return timedelta(seconds=2 * app.config["MAIL_DEADLINE_SECONDS"] + 5)


def send_due(app, limit=None):
    """Send what is due in the outbox; return (sent, failed)."""
    services = app.extensions["countersign"]
    sent = failed = 0
    with _request_context(app), _connected():
        while limit is None or sent + failed < limit:
            item = mailqueue.claim_next(services, lease_for(app))
            if item is None:
                break
            petition = ledger.petition_by_id(item.petition_id)
            try:
                services.mailer.send_prepared(item.kind, petition, item.payload)
            except MailError:
                mailqueue.mark_failed(services, item)
                failed += 1
            else:
                mailqueue.mark_sent(services, item)
                sent += 1
    return sent, failed


def publish_due(app):
    """A batch for every open or closed petition whose interval has passed (MIN_BATCH permitting)."""
    services = app.extensions["countersign"]
    with _app_context(app), _connected():
        ledger.expire_pending(services)
        ledger.sweep_expired_receipts(services)
        for petition in ledger.published_petitions():
            ledger.publish_if_due(services, petition)


def _loop(app, stopping):
    last_publish = 0.0
    interval = max(POLL_SECONDS, min(60.0, app.config["PUBLISH_INTERVAL_SECONDS"] / 4 or POLL_SECONDS))
    while not stopping.is_set():
        try:
            send_due(app)
            if time.monotonic() - last_publish >= interval:
                publish_due(app)
                last_publish = time.monotonic()
        except Exception as error:  # a database outage must not end the thread
            log.warning("background work failed: %s", type(error).__name__)
        stopping.wait(POLL_SECONDS)


def ensure_started(app):
    """Start this process's thread once (per pid: a forked worker starts its own)."""
    pid = os.getpid()
    if _started.get(id(app)) == pid:
        return
    with _start_lock:
        if _started.get(id(app)) == pid:
            return
        _started[id(app)] = pid
        stopping = threading.Event()
        thread = threading.Thread(target=_loop, args=(app, stopping), name="countersign-background", daemon=True)
        app.extensions["countersign-background"] = (thread, stopping)
        _running.append(app)
        thread.start()


def stop(app):
    """End this process's thread (tests; a worker simply exits)."""
    thread, stopping = app.extensions.pop("countersign-background", (None, None))
    if thread is not None:
        stopping.set()
        thread.join(timeout=30)


def stop_all():
    """End every thread this process started: before a test rebinds the database under them."""
    while _running:
        stop(_running.pop())


def init_app(app):
    if not app.config["BACKGROUND_SENDER"]:
        return

    @app.before_request
    def _start_background():
        ensure_started(app)
