"""Organiser fixtures for the app tests: an account, and a browser signed in as it."""

import pytest
from helpers import ORGANISER_EMAIL, ORGANISER_PASSWORD, OrganiserActions

from signing import db
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
