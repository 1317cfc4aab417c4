"""Helpers shared by the tests: a real SMTP mailbox, a form-filling test client,
signers, and the privacy proof's search. Plain functions and classes; the
fixtures that build on them are in the conftest files.
"""

import email
import email.policy
import io
import os
import re
import socket
import threading
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from crypto.normalise import canonical_email
from signing import background, db, ledger
from signing.models import ALL_MODELS, SCHEMA_VERSION, SchemaVersion

CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1}
# Organiser passwords hashed cheaply too: tests of accounts, not of the hash's cost.
CHEAP_PASSWORD_HASH = {"PASSWORD_HASH_TIME_COST": 1, "PASSWORD_HASH_MEMORY_KIB": 8, "PASSWORD_HASH_PARALLELISM": 1}

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


def row_counts():
    """Rows in every table: what a refused request must leave unchanged."""
    with db.database.connection_context():
        return {model.__name__: model.select().count() for model in ALL_MODELS}


def make_petition(services, slug="test", **policy):
    fields = {
        "title": f"Petition {slug}",
        "body": "Please count us.\n\nAll of us.",
        "eligibility": "Residents of the area.",
    }
    fields.update(policy)
    with db.database.connection_context():
        return ledger.create_petition(services, slug=slug, **fields)


class Clock:
    """A clock the test moves by hand; put in Services in place of utcnow."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


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

    def __init__(self, client, mailbox, app=None, scheduler=True):
        self.client = client
        self.mailbox = mailbox
        self.app = app
        # Run the scheduler's tick after each signer action, as the background
        # thread would a moment later (MIN_BATCH and the interval permitting).
        # The prober tests turn it off to decide themselves when batches go.
        self.scheduler = scheduler

    def deliver(self):
        """Run the outbox sender once, as the background thread would a moment later."""
        if self.app is not None:
            background.send_due(self.app)

    def publish(self):
        """One scheduled tick: a batch for every petition where one is due."""
        if self.app is not None:
            background.publish_due(self.app)

    def _tick(self):
        self.deliver()
        if self.scheduler:
            self.publish()

    def csrf(self, url):
        page = self.client.get(url)
        match = CSRF_RE.search(page.get_data(as_text=True))
        assert match, f"no CSRF token on {url} ({page.status_code})"
        return match.group(1)

    def submit(self, form_url, data, action=None, follow_redirects=False):
        token = self.csrf(form_url)
        return self.client.post(
            action or form_url, data={"csrf_token": token, **data}, follow_redirects=follow_redirects
        )

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
        # A receipt is shown after a redirect (Post/Redirect/Get): follow it, as a browser does.
        fields = {k: v for k, v in data.items() if v is not None}
        response = self.submit(f"/p/{slug}/sign", fields, follow_redirects=True)
        self._tick()
        return response

    def confirm(self, link):
        """Follow a mailed link and press the button on the page it shows.

        A dead link shows no button; press it anyway, as a tab left open
        would, with this session's CSRF token from another form."""
        path = urlsplit(link).path
        match = CSRF_RE.search(self.client.get(path).get_data(as_text=True))
        token = match.group(1) if match else self.csrf(path.split("/confirm/")[0] + "/receipt")
        response = self.client.post(path, data={"csrf_token": token}, follow_redirects=True)
        self._tick()
        return response

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
        response = self.submit(f"/p/{slug}/receipt", {"receipt": code, "confirm": "y"}, action=f"/p/{slug}/withdraw")
        self._tick()
        return response


RECEIPT_RE = re.compile(r"<code>([A-Z2-7]{4}(?:-[A-Z2-7]{2,4}){6})</code>")


def receipt_from(response):
    match = RECEIPT_RE.search(response.get_data(as_text=True))
    assert match, "no receipt code on the page"
    return match.group(1)


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


# --- organisers ---

ORGANISER_EMAIL = "alice@campaign.example"
ORGANISER_PASSWORD = "correct horse battery staple"


class OrganiserActions:
    """Signing in and out through the pages, as flaskr's AuthActions does."""

    def __init__(self, browser):
        self.browser = browser

    def login(self, email=ORGANISER_EMAIL, password=ORGANISER_PASSWORD, code=None):
        fields = {"email": email, "password": password}
        if code is not None:
            fields["code"] = code
        return self.browser.submit("/organiser/login", fields)

    def logout(self):
        return self.browser.submit("/organiser/", {}, action="/organiser/logout")


def own_petition(services, organiser, slug="ours", **fields):
    fields.setdefault("require_email", False)
    return make_petition(services, slug, organiser=organiser.id, **fields)


def sign_online(browser, slug, name, postcode="S1 2HE"):
    response = browser.sign(slug, Signer(name=name, postcode=postcode, email=None))
    assert response.status_code == 200, response.get_data(as_text=True)
    return response


def upload(browser, slug, content, filename="paper.csv"):
    token = browser.csrf(f"/organiser/p/{slug}")
    return browser.client.post(
        f"/organiser/p/{slug}/paper/upload",
        data={"csrf_token": token, "file": (io.BytesIO(content), filename)},
        content_type="multipart/form-data",
    )
