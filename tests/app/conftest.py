"""App test fixtures: an organiser account, a browser signed in as it, and gunicorn's config file."""

import importlib
import os

import pytest
from helpers import ORGANISER_EMAIL, ORGANISER_PASSWORD, OrganiserActions

from signing import db, serving
from signing.ledger import accounts


@pytest.fixture
def add_organiser(services):
    """Create an organiser account (cheap password hash: see CHEAP_PASSWORD_HASH)."""

    def add(email=ORGANISER_EMAIL, password=ORGANISER_PASSWORD, is_operator=False):
        with db.database.connection_context():
            return accounts.add_organiser(services, email, password, is_operator=is_operator)

    return add


@pytest.fixture
def organiser(add_organiser):
    return add_organiser()


@pytest.fixture
def operator(add_organiser):
    return add_organiser(is_operator=True)


@pytest.fixture
def auth(browser):
    return OrganiserActions(browser)


@pytest.fixture
def signed_in(browser, auth, organiser):
    assert auth.login().status_code == 302
    return browser


@pytest.fixture
def load_gunicorn_conf(monkeypatch):
    """gunicorn_conf.py as gunicorn loads it, in a copy of the environment it writes to."""
    made = []

    def load(**environment):
        kept = {k: v for k, v in os.environ.items() if not k.endswith(("CONCURRENCY", "TAG_SLOTS_DIR"))}
        monkeypatch.setattr(os, "environ", kept)
        os.environ.update(environment)
        conf = importlib.reload(importlib.import_module("signing.gunicorn_conf"))
        made.append(os.environ["SIGNING_TAG_SLOTS_DIR"])
        return conf

    yield load
    for path in made:
        serving.remove_tag_slots_dir(path)
