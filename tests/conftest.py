"""Fixtures shared by every level of test: a real database file, real keys,
cheap Argon2id, a real SMTP server on loopback, and a test client that fills
in forms and follows mailed links like a browser would.

Set COUNTERSIGN_TEST_DATABASE_URL=postgresql://... to run the same tests on
PostgreSQL (``.ci/run`` does both); by default each test gets its own SQLite
file in a temporary instance folder.
"""

import email
import email.policy
import logging
import os
import re
import socket
import sqlite3
import threading
import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher

from crypto.normalise import canonical_email
from signing import create_app, db, keyring, ledger
from signing.models import ALL_MODELS, SCHEMA_VERSION, SchemaVersion

CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1}
# Limits still checked on every request, but far above what any test sends;
# tests/app/test_ratelimit.py lowers them to reach a 429.
GENEROUS_RATE_LIMITS = {
    f"RATE_LIMIT_{name}": "10000/minute" for name in ("SIGN", "CONFIRM", "RECEIPT", "WITHDRAW", "LOGIN")
}
POSTGRES_URL = os.environ.get("COUNTERSIGN_TEST_DATABASE_URL", "")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
PUBLIC_URL = "https://petitions.example.org"
CONFIRM_LINK_RE = re.compile(re.escape(PUBLIC_URL) + r"/p/[a-z0-9-]+/confirm/([A-Za-z0-9_-]+)")


def reset_postgres(url):
    database = db.open_database(url)
    with database.connection_context():
        database.drop_tables(ALL_MODELS, safe=True, cascade=True)
        database.create_tables(ALL_MODELS)
        SchemaVersion.create(version=SCHEMA_VERSION)  # tables made at the latest version


def free_port():
    """A loopback port nothing listens on (just now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Delivery:
    """One message the test SMTP server accepted."""

    sender: str
    recipients: list
    message: email.message.EmailMessage

    @property
    def subject(self):
        return self.message["Subject"]

    @property
    def body(self):
        return self.message.get_content()

    @property
    def link(self):
        match = CONFIRM_LINK_RE.search(self.body)
        return match.group(0) if match else None

    @property
    def token(self):
        match = CONFIRM_LINK_RE.search(self.body)
        return match.group(1) if match else None


class Mailbox:
    """An aiosmtpd handler that keeps every delivered message, in memory only."""

    def __init__(self):
        self.deliveries = []
        self.refused = set()  # recipients answered with 550
        self._lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return "550 5.1.1 <" + address + ">: no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        with self._lock:
            self.deliveries.append(Delivery(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"

    def clear(self):
        with self._lock:
            self.deliveries.clear()
            self.refused.clear()

    def to(self, address):
        return [d for d in self.deliveries if address in d.recipients]

    def last(self):
        assert self.deliveries, "no message was delivered"
        return self.deliveries[-1]

    @property
    def tokens(self):
        return [d.token for d in self.deliveries if d.token]


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


def mail_config(smtp_server):
    return {
        "MAIL_BACKEND": "smtp",
        "MAIL_HOST": smtp_server.hostname,
        "MAIL_PORT": smtp_server.port,
        "MAIL_SECURITY": "none",
        "MAIL_FROM": "Countersign test <petitions@example.org>",
        "MAIL_TIMEOUT_SECONDS": 5,
        "PUBLIC_URL": PUBLIC_URL,
    }


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
        "PAGE_CACHE_SECONDS": 0,
        "DEVELOPMENT": True,
        "TESTING": True,
        **CHEAP_ARGON2,
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
        db.create_schema()
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


# A cheap Argon2id for organiser passwords: tests of accounts, not of the hash's cost.
CHEAP_PASSWORD_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def row_counts():
    """Rows in every table: what a refused request must leave unchanged."""
    with db.database.connection_context():
        return {model.__name__: model.select().count() for model in ALL_MODELS}


@pytest.fixture
def make_app(app, app_config):
    """Another app on the same database and keys, with some settings changed."""

    def build(**overrides):
        return create_app({**app_config, **overrides})

    return build


def make_petition(services, slug="test", **policy):
    fields = {
        "title": f"Petition {slug}",
        "body": "Please count us.\n\nAll of us.",
        "eligibility": "Residents of the area.",
    }
    fields.update(policy)
    with db.database.connection_context():
        return ledger.create_petition(services, slug=slug, **fields)


@pytest.fixture
def petition(services):
    return make_petition(services)


@dataclass
class Signer:
    """A person with an identity, filling in forms through the test client."""

    name: str = "Clara Cheung"
    postcode: str = "S1 2HE"
    email: str = "clara.cheung@example.org"
    display_name: str = ""


class Browser:
    """The test client plus form filling: fetch the form, post it with its CSRF token,
    and read the signer's mail to follow the confirmation link."""

    def __init__(self, client, mailbox):
        self.client = client
        self.mailbox = mailbox

    def csrf(self, url):
        page = self.client.get(url)
        match = CSRF_RE.search(page.get_data(as_text=True))
        assert match, f"no CSRF token on {url} ({page.status_code})"
        return match.group(1)

    def submit(self, form_url, data, action=None):
        token = self.csrf(form_url)
        return self.client.post(action or form_url, data={"csrf_token": token, **data})

    def sign(self, slug, signer=None, **overrides):
        signer = signer or Signer()
        data = {
            "name": signer.name,
            "postcode": signer.postcode,
            "email": signer.email,
            "display_name": signer.display_name,
            "eligible": "y",
        }
        data.update(overrides)
        return self.submit(f"/p/{slug}/sign", {k: v for k, v in data.items() if v is not None})

    def confirm(self, link):
        """Follow a mailed link and press the button on the page it shows.

        A dead link shows no button; press it anyway, as a tab left open
        would, with this session's CSRF token from another form."""
        path = urlsplit(link).path
        match = CSRF_RE.search(self.client.get(path).get_data(as_text=True))
        token = match.group(1) if match else self.csrf(path.split("/confirm/")[0] + "/receipt")
        return self.client.post(path, data={"csrf_token": token})

    def sign_and_confirm(self, slug, signer=None, **overrides):
        """Sign, read the one message that arrives, confirm: the page with the receipt."""
        before = len(self.mailbox.deliveries)
        submitted = self.sign(slug, signer, **overrides)
        assert submitted.status_code == 200, submitted.get_data(as_text=True)
        arrived = self.mailbox.deliveries[before:]
        assert len(arrived) == 1, f"{len(arrived)} messages arrived"
        assert arrived[0].link, "no confirmation link in the message"
        confirmed = self.confirm(arrived[0].link)
        assert confirmed.status_code == 200, confirmed.get_data(as_text=True)
        return confirmed

    def check_receipt(self, slug, code):
        return self.submit(f"/p/{slug}/receipt", {"receipt": code})

    def withdraw(self, slug, code):
        return self.submit(f"/p/{slug}/receipt", {"receipt": code, "confirm": "y"}, action=f"/p/{slug}/withdraw")


RECEIPT_RE = re.compile(r"<code>([A-Z2-7]{4}(?:-[A-Z2-7]{2,4}){6})</code>")


def receipt_from(response):
    match = RECEIPT_RE.search(response.get_data(as_text=True))
    assert match, "no receipt code on the page"
    return match.group(1)


@pytest.fixture
def browser(app, mailbox):
    return Browser(app.test_client(), mailbox)


# --- the privacy proof's search (tests/app/test_privacy.py and the mail tests) ---


def forms_of(signer):
    """Every spelling of the identity someone could grep for, as bytes."""
    name = signer.name
    variants = {
        name,
        name.casefold(),
        name.upper(),
        unicodedata.normalize("NFKC", name).casefold(),
        " ".join(sorted(name.casefold().replace("-", "").split())),
        signer.email,
        signer.email.strip(),
        signer.email.strip().lower(),
        signer.email.lower().split("+")[0].replace(".", "") + "@gmail.com",
        signer.email.strip().lower().split("@")[0],
        signer.email.strip().lower().split("@")[0].split("+")[0],
        signer.postcode,
        signer.postcode.replace(" ", ""),
        signer.postcode.lower(),
    }
    if signer.email.strip():
        variants.add(canonical_email(signer.email))
    variants.update(part for part in name.replace("-", " ").split() if len(part) >= 4)
    found = set()
    for text in variants:
        for encoding in ("utf-8", "utf-16-le"):
            found.add(text.encode(encoding))
    return found


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


def captured_logs(caplog, capfd):
    """Everything logged (any level, any logger) and written to stdout or stderr so far."""
    return (caplog.text + "".join(capfd.readouterr())).encode("utf-8")


def assert_no_trace(instance_path, logs, signers, secrets=(), addresses=()):
    """No spelling of any signer's identity, no secret (receipt code,
    confirmation token) and no client address, in ``logs`` or in any byte of
    the instance folder: the SQLite database, its WAL and shared memory, the keys."""
    needles = set().union(*(forms_of(signer) for signer in signers))
    needles.update(address.encode(encoding) for address in addresses for encoding in ("utf-8", "utf-16-le"))
    secrets = [secret.encode() for secret in secrets]
    for needle in needles:
        assert needle not in logs, f"{needle!r} in the logs"
    for secret in secrets:
        assert secret not in logs and secret.upper() not in logs.upper(), f"secret {secret!r} in the logs"
    files = [path for path in instance_path.rglob("*") if path.is_file()]
    if not POSTGRES_URL:
        assert any(path.name.endswith("-wal") for path in files), "expected the WAL to be searched too"
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in {path.name}"
        for secret in secrets:
            assert secret.upper() not in data.upper(), f"secret {secret!r} in {path.name}"


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
