"""Correctness under concurrency and crash safety, through `signing serve` (real gunicorn).

Each test starts gunicorn with three workers on a loopback socket that the
test itself holds, against SQLite and, when COUNTERSIGN_TEST_DATABASE_URL is
set, PostgreSQL too. Holding the socket lets a killed server be restarted on
the same port: connections that waited in its backlog are answered by the
new server. Identities use cheap Argon2id, so a few hundred signatures take
seconds. Petitions collect no email (one tag per signature, deduplicated by
name and postcode).
"""

import http.client
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import pytest
from helpers import CSRF_RE, POSTGRES_URL, RECEIPT_RE

from crypto.audit import verify_bundle
from crypto.leaves import SignatureLeaf, parse_leaf
from crypto.receipts import parse_receipt, receipt_digest
from signing import db
from signing.models import ALL_MODELS, COUNTED, Inbox, Leaf, Petition, Signature, TreeHead

pytestmark = pytest.mark.slow

SLUG = "conc"
WORKERS = 3
SIGNING_CLI = [sys.executable, "-c", "from signing.cli import main; main()"]
ENGINES = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def name_of(i):
    """A distinct name per number, letters only ("Conc Bcd Signer")."""
    letters = "".join(chr(97 + int(d)) for d in str(i))
    return f"Signer {letters.capitalize()} Conc"


def duplicate_spelling(i):
    """The same person as name_of(i), written differently (order, case, punctuation)."""
    return name_of(i).upper().replace("SIGNER ", "").replace(" CONC", ", conc signer")


class Server:
    """`signing serve` on a loopback socket that outlives the server."""

    def __init__(self, tmp_path, engine, database_url=None, **settings):
        """``database_url`` names another PostgreSQL than the suite's; ``settings`` are more SIGNING_*."""
        self.instance = tmp_path / "instance"
        self.log_path = tmp_path / "server.log"
        if engine == "postgresql":
            self.database_url = database_url or POSTGRES_URL
            database = db.open_database(self.database_url)
            with database.connection_context():
                database.drop_tables(ALL_MODELS, safe=True, cascade=True)
        else:
            self.database_url = f"sqlite:///{self.instance / 'countersign.db'}"
        self.env = {
            **os.environ,
            "SIGNING_INSTANCE_PATH": str(self.instance),
            "SIGNING_DATABASE_URL": self.database_url,
            "SIGNING_ARGON2_TIME_COST": "1",
            "SIGNING_ARGON2_MEMORY_KIB": "8",
            "SIGNING_PUBLISH_INTERVAL_SECONDS": "0",
            # Every signature seen in the next batch (the default, 10, is tested in tests/app/test_batches.py).
            "SIGNING_MIN_BATCH": "1",
            "SIGNING_DEVELOPMENT": "true",
            # Hundreds of signatures from one loopback address, on purpose.
            "SIGNING_RATE_LIMITS_ENABLED": "false",
            **{f"SIGNING_{name}": str(value) for name, value in settings.items()},
        }
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=256)
        self.port = self.listener.getsockname()[1]
        self.process = None
        self.cli("init")
        self.cli("petition", "create", SLUG, "--no-email", "--title", "Concurrency", "--body", "Count us once.")

    def cli(self, *args, check=True, timeout=60):
        result = subprocess.run([*SIGNING_CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout)
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def start(self):
        fd = self.listener.fileno()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [*SIGNING_CLI, "serve", "--bind", f"fd://{fd}", "--workers", str(WORKERS)],
                env=self.env,
                pass_fds=(fd,),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if len(self.worker_pids()) == WORKERS:
                try:
                    if request(self.port, "GET", f"/p/{SLUG}", timeout=5)[0] == 200:
                        return
                except OSError:
                    pass
            assert self.process.poll() is None, self.log()
            time.sleep(0.1)
        raise AssertionError("gunicorn did not start:\n" + self.log())

    def worker_pids(self):
        """The live workers: processes whose parent is the gunicorn master."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z" and int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill_worker(self):
        pid = random.choice(self.worker_pids())
        os.kill(pid, signal.SIGKILL)
        return pid

    def kill_all(self):
        """SIGKILL the master and every worker at once (their own process group)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while self.worker_pids() and time.monotonic() < deadline:
            time.sleep(0.05)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def close(self):
        self.stop()
        self.listener.close()
        if db.database.obj is not None and not db.database.is_closed():
            db.database.close()

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def bundle(self):
        status, body, _ = request(self.port, "GET", f"/p/{SLUG}/audit/bundle", timeout=60, raw=True)
        assert status == 200
        return body


def request(port, method, path, body=None, cookie=None, timeout=20, raw=False):
    """One request on its own connection; returns (status, body, session cookie)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {}
        if cookie:
            headers["Cookie"] = cookie
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        set_cookie = response.getheader("Set-Cookie")
        return (
            response.status,
            data if raw else data.decode("utf-8"),
            set_cookie.split(";", 1)[0] if set_cookie else cookie,
        )
    finally:
        connection.close()


def sign(port, name, postcode="S1 2HE"):
    """Fetch the form (CSRF token and session cookie), post it; return the receipt or None."""
    status, page, cookie = request(port, "GET", f"/p/{SLUG}/sign")
    assert status == 200, page
    token = CSRF_RE.search(page).group(1)
    form = urlencode({"csrf_token": token, "name": name, "postcode": postcode, "eligible": "y"})
    status, page, cookie = request(port, "POST", f"/p/{SLUG}/sign", body=form, cookie=cookie)
    assert status == 303, f"{status}: {page[:500]}"
    # The receipt is on the page the form redirects to (Post/Redirect/Get), for this session only.
    status, page, _ = request(port, "GET", f"/p/{SLUG}/signed", cookie=cookie)
    assert status == 200, f"{status}: {page[:500]}"
    match = RECEIPT_RE.search(page)
    assert match, "no receipt on the signed page"
    return match.group(1)


def digest(code):
    return receipt_digest(parse_receipt(code))


def leaf_receipts(bundle):
    leaves = bundle.splitlines()[1:]
    digests = []
    for line in leaves:
        if line.startswith(b'{"head"'):
            continue
        leaf = parse_leaf(line)
        if isinstance(leaf, SignatureLeaf):
            digests.append(leaf.receipt)
    return digests


def assert_log_rows_consistent():
    """The latest head covers exactly the stored leaves, and no signature points past it."""
    head = TreeHead.select().order_by(TreeHead.size.desc()).first()
    assert Leaf.select().count() == head.size
    assert not Signature.select().where(Signature.leaf_index >= head.size).exists()
    assert not Signature.select().where(Signature.withdrawal_index >= head.size).exists()
    return head


@pytest.fixture(params=ENGINES)
def server(request, tmp_path):
    server = Server(tmp_path, request.param)
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_concurrent_signatures_and_publishes_count_each_person_once(server):
    distinct, duplicates = 240, 60
    submissions = [name_of(i) for i in range(distinct)] + [duplicate_spelling(i) for i in range(duplicates)]
    random.shuffle(submissions)
    started = time.monotonic()

    publishes = []

    def publish_repeatedly():
        while time.monotonic() - started < 60 and len(publishes) < 4:
            publishes.append(server.cli("publish", "--now", SLUG, check=False))

    publisher = threading.Thread(target=publish_repeatedly)
    publisher.start()
    with ThreadPoolExecutor(max_workers=24) as pool:
        receipts = list(pool.map(lambda name: (name, sign(server.port, name)), submissions))
    publisher.join(timeout=60)
    assert all(result.returncode == 0 for result in publishes), [r.stderr for r in publishes]
    assert len(publishes) >= 1
    assert time.monotonic() - started < 60

    server.cli("publish", "--now", SLUG)
    bundle = server.bundle()
    report = verify_bundle(bundle.splitlines())
    assert report.count == distinct
    assert report.size == distinct  # no withdrawals: every leaf is one person
    assert report.latest.count == distinct

    # Exactly one receipt per person is in the log; each duplicate's receipt,
    # shaped the same, is stored with its inbox row and leads to that signature.
    in_log = set(leaf_receipts(bundle))
    assert len(in_log) == distinct
    by_person = {}
    for name, code in receipts:
        person = name_of(next(i for i in range(distinct) if name in (name_of(i), duplicate_spelling(i))))
        by_person.setdefault(person, []).append(digest(code) in in_log)
    assert len(by_person) == distinct
    assert all(hits.count(True) == 1 for hits in by_person.values())

    db.open_database(server.database_url)
    with db.database.connection_context():
        assert Signature.select().where(Signature.status == COUNTED).count() == distinct
        assert_log_rows_consistent()
        linked = {bytes(row.receipt_hash) for row in Inbox.select().where(Inbox.signature.is_null(False))}
    assert all(digest(code) in in_log | linked for _, code in receipts)
    assert "Traceback" not in server.log()
    assert "127.0.0.1" not in server.log(), "a client or listening address reached the server's log"


def test_killed_worker_and_server_lose_no_confirmed_signature(server):
    total = 200
    confirmed, failed = [], []
    lock = threading.Lock()
    progress = threading.Condition(lock)

    def one(i):
        try:
            code = sign(server.port, name_of(i))
        except (OSError, http.client.HTTPException):
            with lock:
                failed.append(i)  # no receipt: the signer was never told it counted
            return
        with progress:
            confirmed.append((i, code))
            progress.notify_all()

    def wait_for(count):
        with progress:
            assert progress.wait_for(lambda: len(confirmed) >= count, timeout=40), len(confirmed)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=16) as pool:
        futures = [pool.submit(one, i) for i in range(total)]
        wait_for(40)
        killed = server.kill_worker()
        wait_for(90)
        server.kill_all()
        # Signers keep arriving while the server is down: they wait in the
        # socket's backlog and are answered by the restarted server.
        server.start()
        assert killed not in server.worker_pids()
        for future in futures:
            future.result(timeout=60)
    assert time.monotonic() - started < 60
    assert len(confirmed) + len(failed) == total
    assert len(confirmed) >= 100

    db.open_database(server.database_url)
    with db.database.connection_context():
        assert_log_rows_consistent()
        stored = {bytes(row.receipt_hash) for row in Signature.select(Signature.receipt_hash)} | {
            bytes(row.receipt_hash) for row in Inbox.select(Inbox.receipt_hash)
        }
        assert all(digest(code) in stored for _, code in confirmed), "a signature shown a receipt was lost"

    server.cli("publish", "--now", SLUG)
    bundle = server.bundle()
    report = verify_bundle(bundle.splitlines())
    in_log = set(leaf_receipts(bundle))
    assert all(digest(code) in in_log for _, code in confirmed)
    with db.database.connection_context():
        assert report.count == Signature.select().where(Signature.status == COUNTED).count()
        assert_log_rows_consistent()
    # Failed requests either never reached the database or did and count once.
    assert len(confirmed) <= report.count <= total


def test_publish_killed_midway_leaves_the_log_as_it_was(tmp_path):
    """SIGKILL `signing publish` while it holds the log lock; nothing half-appended remains."""
    engine = "postgresql" if POSTGRES_URL else "sqlite"
    server = Server(tmp_path, engine)
    try:
        waiting = 3000
        db.open_database(server.database_url)
        with db.database.connection_context():
            petition_id = Petition.get(Petition.slug == SLUG).id
            rows = [
                {
                    "petition": petition_id,
                    "person_tag": os.urandom(32),
                    "channel": "online",
                    "status": COUNTED,
                    "receipt_hash": os.urandom(32),
                    "day": time.strftime("%Y-%m-%d"),
                }
                for _ in range(waiting)
            ]
            with db.database.atomic():
                for start in range(0, waiting, 500):
                    Signature.insert_many(rows[start : start + 500]).execute()
            before = assert_log_rows_consistent()

        kills = 0
        for _attempt in range(3):
            publisher = subprocess.Popen([*SIGNING_CLI, "publish", "--now", SLUG], env=server.env)
            if _wait_until_lock_held(petition_id, publisher):
                publisher.send_signal(signal.SIGKILL)
                kills += 1
            publisher.wait(timeout=30)
            if publisher.returncode == 0:
                break  # it finished before it could be caught: a full batch
            with db.database.connection_context():
                head = assert_log_rows_consistent()
                assert (head.size, head.count) == (before.size, before.count)
                assert not Signature.select().where(Signature.leaf_index.is_null(False)).exists()
        assert kills >= 1

        server.cli("publish", "--now", SLUG)
        server.start()
        report = verify_bundle(server.bundle().splitlines())
        assert report.count == report.size == waiting
    finally:
        server.close()


def _wait_until_lock_held(petition_id, process, timeout=20):
    """Poll until another process holds the petition's log lock (True), or it exits (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with db.database.connection_context():
            try:
                if db.is_sqlite():
                    db.database.execute_sql("PRAGMA busy_timeout = 0")
                    with db.database.atomic("IMMEDIATE"):
                        pass
                else:
                    with db.database.atomic():
                        db.database.execute_sql(
                            "SELECT id FROM petition WHERE id = %s FOR UPDATE NOWAIT", (petition_id,)
                        )
            except Exception as error:  # noqa: BLE001 -- "locked" in either engine's words
                if re.search(r"locked|could not obtain lock", str(error)):
                    return True
                raise
        time.sleep(0.002)
    return False
