"""PostgreSQL stopped and started under load, through `signing serve` (real gunicorn).

While the database is down every answer is a 503 with Retry-After (never a
500); once it is back, signing works without restarting anything, and every
signature that was shown a receipt is in the database and in the log.
"""

import http.client
import threading
import time
from urllib.parse import urlencode

import pytest
from helpers import CSRF_RE, RECEIPT_RE
from pgcluster import Cluster
from test_gunicorn import SLUG, Server, digest, leaf_receipts, name_of

from crypto.audit import verify_bundle
from signing import db
from signing.models import Inbox, Signature

pytestmark = pytest.mark.slow

CLIENTS = 8


def exchange(port, method, path, body=None, cookie=None):
    """(status, Retry-After, page, cookie) of one request on its own connection."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
        if cookie:
            headers["Cookie"] = cookie
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        page = response.read().decode("utf-8")
        set_cookie = response.getheader("Set-Cookie")
        cookie = set_cookie.split(";", 1)[0] if set_cookie else cookie
        return response.status, response.getheader("Retry-After"), page, cookie
    finally:
        connection.close()


class Load:
    """Signers arriving without pause; every answer kept with the time it came back."""

    def __init__(self, port):
        self.port = port
        self.answers = []  # (finished, status, Retry-After, receipt or None)
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def _record(self, status, retry_after, page):
        match = RECEIPT_RE.search(page) if status == 200 else None
        with self._lock:
            self.answers.append((time.monotonic(), status, retry_after, match.group(1) if match else None))

    def _run(self):
        while not self._stop.is_set():
            with self._lock:
                self._next += 1
                name = name_of(self._next)
            status, retry_after, page, cookie = exchange(self.port, "GET", f"/p/{SLUG}/sign")
            if status != 200:
                self._record(status, retry_after, page)
                continue
            form = {"csrf_token": CSRF_RE.search(page).group(1), "name": name, "postcode": "S1 2HE", "eligible": "y"}
            status, retry_after, page, cookie = exchange(self.port, "POST", f"/p/{SLUG}/sign", urlencode(form), cookie)
            if status == 303:  # signed: the receipt is on the page the form redirects to
                status, retry_after, page, _ = exchange(self.port, "GET", f"/p/{SLUG}/signed", None, cookie)
            self._record(status, retry_after, page)

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc):
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def wait_for(self, predicate, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(list(self.answers)):
                    return
            time.sleep(0.05)
        raise AssertionError(f"timed out; answers so far: {[a[1] for a in self.answers][-20:]}")


def test_postgresql_stopped_and_started_under_load(tmp_path):
    cluster = Cluster()
    server = Server(tmp_path, "postgresql", database_url=cluster.url)
    try:
        server.start()
        with Load(server.port) as load:
            load.wait_for(lambda answers: sum(a[1] == 200 for a in answers) >= 20)
            cluster.stop()
            stopped = time.monotonic()
            load.wait_for(lambda answers: sum(a[0] > stopped and a[1] == 503 for a in answers) >= 30)
            time.sleep(3)
            restarting = time.monotonic()
            cluster.start()
            load.wait_for(lambda answers: sum(a[0] > restarting and a[1] == 200 for a in answers) >= 20)
            restarted = time.monotonic()
            load.wait_for(lambda answers: sum(a[0] > restarted for a in answers) >= 20)
        answers = load.answers

        assert {status for _, status, _, _ in answers} <= {200, 503}, sorted({a[1] for a in answers})
        down = [a for a in answers if stopped + 1 < a[0] < restarting]
        assert down and all(status == 503 and retry for _, status, retry, _ in down), down[:5]
        assert all(retry for _, status, retry, _ in answers if status == 503)
        # Recovered without a restart: all answers after the first few are signatures again.
        after = [status for finished, status, _, _ in answers if finished > restarted]
        assert after and set(after) == {200}, after

        receipts = [code for _, status, _, code in answers if status == 200]
        assert all(receipts)
        db.open_database(cluster.url)
        with db.database.connection_context():
            # Kept: counted already, or received and waiting in the inbox for the next batch.
            stored = {bytes(row.receipt_hash) for row in Signature.select(Signature.receipt_hash)}
            stored |= {bytes(row.receipt_hash) for row in Inbox.select(Inbox.receipt_hash) if row.receipt_hash}
        assert all(digest(code) in stored for code in receipts), "a signature shown a receipt was lost"
        server.cli("publish", "--now", SLUG)
        bundle = server.bundle()
        verify_bundle(bundle.splitlines())
        in_log = set(leaf_receipts(bundle))
        assert all(digest(code) in in_log for code in receipts)
        assert "Traceback" not in server.log()
    finally:
        server.close()
        cluster.close()

