"""Fixtures shared by every level of test: a real database file, real keys,
cheap Argon2id, a real SMTP server on loopback, and a test client that fills
in forms and follows mailed links like a browser would (helpers.py).

Set COUNTERSIGN_TEST_DATABASE_URL=postgresql://... to run the same tests on
PostgreSQL (``.ci/run`` does both); by default each test gets its own SQLite
file in a temporary instance folder.
"""

import logging
import os
import sqlite3

import pytest
from aiosmtpd.controller import Controller
from helpers import (
    CHEAP_ARGON2,
    CHEAP_PASSWORD_HASH,
    GENEROUS_RATE_LIMITS,
    POSTGRES_URL,
    Browser,
    Mailbox,
    free_port,
    mail_config,
    make_petition,
    reset_postgres,
)

from signing import background, create_app, db, keyring, migrations


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server on a free loopback port, for the whole session."""
    # The server's own log names every recipient, as any mail server's does;
    # it is not Countersign's log, so keep it out of what tests capture.
    server_log = logging.getLogger("mail.log")
    server_log.setLevel(logging.CRITICAL)
    server_log.propagate = False
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), enable_SMTPUTF8=True)
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mailbox(smtp_server):
    smtp_server.handler.clear()
    return smtp_server.handler


@pytest.fixture(autouse=True)
def no_background_threads_left():
    """An app a test builds with its own settings may start the background sender; it must
    not outlive the test and use a database the next test closes under it."""
    yield
    background.stop_all()


@pytest.fixture(autouse=True)
def cli_database(monkeypatch):
    """Commands a test runs in-process (CliRunner) use the test database too."""
    if POSTGRES_URL:
        monkeypatch.setenv("SIGNING_DATABASE_URL", POSTGRES_URL)


@pytest.fixture
def instance_path(tmp_path):
    path = tmp_path / "instance"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def app_config(instance_path, smtp_server):
    config = {
        "INSTANCE_PATH": str(instance_path),
        "PUBLISH_INTERVAL_SECONDS": 0,
        # Batches of one, so tests can see each entry land; test_batches.py tests the real minimum.
        "MIN_BATCH": 1,
        # The tests send the outbox themselves (Browser.deliver), at the moment they choose.
        "BACKGROUND_SENDER": False,
        "PAGE_CACHE_SECONDS": 0,
        "DEVELOPMENT": True,
        "TESTING": True,
        **CHEAP_ARGON2,
        **CHEAP_PASSWORD_HASH,
        **GENEROUS_RATE_LIMITS,
        **mail_config(smtp_server),
    }
    if POSTGRES_URL:
        config["DATABASE_URL"] = POSTGRES_URL
    return config


@pytest.fixture
def app(app_config):
    instance = app_config["INSTANCE_PATH"]
    keyring.create_missing(f"{instance}/master.key", f"{instance}/log.key")
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)
    else:
        db.open_database(f"sqlite:///{instance}/countersign.db")
        migrations.migrate_to_latest()
    application = create_app(app_config)
    # No app context is held across the test: each client request must get its
    # own (and its own ``g``), as in production, or Flask-WTF's per-request CSRF
    # token would leak from one request into the next.
    yield application
    if not db.database.is_closed():
        db.database.close()


@pytest.fixture
def services(app):
    return app.extensions["countersign"]


@pytest.fixture
def make_app(app, app_config):
    """Another app on the same database and keys, with some settings changed."""

    def build(**overrides):
        return create_app({**app_config, **overrides})

    return build


@pytest.fixture
def petition(services):
    return make_petition(services)


@pytest.fixture
def browser(app, mailbox):
    return Browser(app.test_client(), mailbox, app)


@pytest.fixture
def other_process(app, instance_path):
    """A second connection to the SQLite file held open for the whole test, as
    another worker's would be in production. Without it, each request closes
    the only connection and SQLite folds the WAL into the main file; with it,
    the WAL stays, and the privacy search reads what it holds too."""
    if POSTGRES_URL:
        yield None
        return
    connection = sqlite3.connect(instance_path / "countersign.db")
    connection.execute("SELECT count(*) FROM petition").fetchall()
    yield connection
    connection.close()


GO_SOURCE = os.path.join(os.path.dirname(__file__), "go", "c2spcheck", "main.go")
GOPATH = "/usr/share/gocode"  # where Debian's golang-golang-x-mod-dev puts its source


@pytest.fixture(scope="session")
def c2spcheck(tmp_path_factory):
    """A checkpoint verifier built from the Go checksum database's own note and tlog
    packages (tests/go/c2spcheck), offline, in GOPATH mode. Skipped only without Go."""
    import shutil
    import subprocess  # nosec B404 -- runs the Go toolchain on our own source

    go = shutil.which("go")
    if go is None:
        pytest.skip("Go is not installed (apt-get install golang-go golang-golang-x-mod-dev)")
    if not os.path.isdir(os.path.join(GOPATH, "src", "golang.org", "x", "mod", "sumdb", "note")):
        pytest.skip(f"golang.org/x/mod is not under {GOPATH} (apt-get install golang-golang-x-mod-dev)")
    out = tmp_path_factory.mktemp("go")
    binary = out / "c2spcheck"
    env = dict(os.environ, GO111MODULE="off", GOPATH=GOPATH, GOCACHE=str(out / "cache"), GOFLAGS="")
    built = subprocess.run(  # nosec B603
        [go, "build", "-o", str(binary), GO_SOURCE], env=env, capture_output=True, text=True, timeout=300
    )
    assert built.returncode == 0, built.stderr

    def run(*args, stdin=""):
        return subprocess.run([str(binary), *args], input=stdin, capture_output=True, text=True, timeout=60)  # nosec

    return run
