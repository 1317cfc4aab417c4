"""Fixtures shared by every level of test: a real database file, real keys,
cheap Argon2id, and a test client that fills in forms like a browser would.

Set COUNTERSIGN_TEST_DATABASE_URL=postgresql://... to run the same tests on
PostgreSQL (``.ci/run`` does both); by default each test gets its own SQLite
file in a temporary instance folder.
"""

import os
import re
from dataclasses import dataclass

import pytest

from signing import create_app, db, keyring, ledger
from signing.models import ALL_MODELS

CHEAP_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8, "ARGON2_PARALLELISM": 1}
POSTGRES_URL = os.environ.get("COUNTERSIGN_TEST_DATABASE_URL", "")
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def reset_postgres(url):
    database = db.open_database(url)
    with database.connection_context():
        database.drop_tables(ALL_MODELS, safe=True, cascade=True)
        database.create_tables(ALL_MODELS)


@pytest.fixture
def instance_path(tmp_path):
    path = tmp_path / "instance"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def app_config(instance_path):
    config = {
        "INSTANCE_PATH": str(instance_path),
        "PUBLISH_INTERVAL_SECONDS": 0,
        "DEVELOPMENT": True,
        "TESTING": True,
        **CHEAP_ARGON2,
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
    with application.app_context():
        yield application
    if not db.database.is_closed():
        db.database.close()


@pytest.fixture
def services(app):
    return app.extensions["countersign"]


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
    """The test client plus form filling: fetch the form, post it with its CSRF token."""

    def __init__(self, client):
        self.client = client

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
def browser(app):
    return Browser(app.test_client())
