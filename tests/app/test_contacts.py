"""Sealed "keep me informed" contacts: sealed to the organiser, unreadable by the server."""

import os
import stat

import pytest
from click.testing import CliRunner
from helpers import Signer, make_petition

from crypto.errors import InvalidKey
from crypto.sealed import contact_info, generate_organiser_key, load_private_key, open_sealed
from signing.cli import main as cli
from signing.ledger import accounts
from signing.models import Inbox, Petition, SealedContact, Signature

ADDRESS = "keep.me.posted@example.net"


@pytest.fixture
def organiser_key(tmp_path):
    """A key pair made the way an organiser makes it: with the CLI, on their own computer."""
    path = tmp_path / "organiser.pem"
    result = CliRunner().invoke(cli, ["keys", "organiser", str(path)])
    assert result.exit_code == 0, result.output
    public_hex = result.output.strip().rsplit(" ", 1)[-1]
    return path, bytes.fromhex(public_hex)


def test_key_file_is_private_and_never_overwritten(organiser_key):
    path, public = organiser_key
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(public) == 32
    again = CliRunner().invoke(cli, ["keys", "organiser", str(path)])
    assert again.exit_code == 1 and "already exists" in again.output


def test_contact_is_sealed_apart_from_the_signature(browser, services, organiser_key, instance_path, monkeypatch):
    path, public = organiser_key
    make_petition(services, "news", require_email=False, contact_public_key=public)
    form = browser.client.get("/p/news/sign").get_data(as_text=True)
    assert "Keep me informed" in form
    response = browser.sign("news", Signer(email=None), keep_informed="y", contact_email=ADDRESS)
    assert response.status_code == 200

    stored = SealedContact.get()
    assert ADDRESS.encode() not in bytes(stored.sealed)
    assert not hasattr(stored, "signature")
    # The server's copy opens only with the organiser's private key.
    with pytest.raises(InvalidKey):
        open_sealed(load_private_key(generate_organiser_key()[0]), bytes(stored.sealed), contact_info("news"))
    for file in instance_path.iterdir():
        assert ADDRESS.encode() not in file.read_bytes(), file.name

    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    opened = CliRunner().invoke(cli, ["contacts", "news", "--key", str(path)])
    assert opened.exit_code == 0, opened.output
    assert opened.output.splitlines() == [ADDRESS]


def test_email_petition_keeps_the_contact_only_once_confirmed(browser, services, organiser_key, mailbox):
    _, public = organiser_key
    make_petition(services, "news", contact_public_key=public)
    browser.sign("news", Signer(), keep_informed="y")
    assert SealedContact.select().count() == 0
    assert Inbox.get().sealed_contact is not None
    browser.confirm(mailbox.last().link)  # and the next batch settles it
    assert SealedContact.select().count() == 1
    assert Inbox.select().count() == 0 and Signature.get().sealed_contact is None


def test_no_contact_without_the_box_ticked_or_without_an_organiser_key(browser, services, organiser_key):
    _, public = organiser_key
    make_petition(services, "news", require_email=False, contact_public_key=public)
    make_petition(services, "plain", require_email=False)
    browser.sign("news", Signer(email=None), contact_email=ADDRESS)
    assert "Keep me informed" not in browser.client.get("/p/plain/sign").get_data(as_text=True)
    browser.sign("plain", Signer(email=None, name="Other Person"), keep_informed="y", contact_email=ADDRESS)
    assert SealedContact.select().count() == 0


def test_bad_contact_address_is_a_field_error(browser, services, organiser_key):
    _, public = organiser_key
    make_petition(services, "news", require_email=False, contact_public_key=public)
    response = browser.sign("news", Signer(email=None), keep_informed="y", contact_email="not an address")
    assert response.status_code == 400
    assert "valid email address" in response.get_data(as_text=True)
    assert Signature.select().count() == 0


def test_organiser_sets_the_contact_key_in_the_petition_form(app, services, organiser_key, browser, monkeypatch):
    _, public = organiser_key
    accounts.add_organiser(services, "org@campaign.example", "a long enough password")
    browser.submit("/organiser/login", {"email": "org@campaign.example", "password": "a long enough password"})
    fields = {"slug": "keyed", "title": "T", "body": "B", "require_postcode": "y"}
    bad = browser.submit("/organiser/new", {**fields, "contact_public_key": "nothex"})
    assert bad.status_code == 400 and "64-character public key" in bad.get_data(as_text=True)
    assert browser.submit("/organiser/new", {**fields, "contact_public_key": public.hex()}).status_code == 302
    assert bytes(Petition.get(Petition.slug == "keyed").contact_public_key) == public


def test_contact_key_cannot_change_once_the_petition_is_open(app, services, organiser_key, browser):
    _, public = organiser_key
    other_public = bytes(32 * [7])
    accounts.add_organiser(services, "org@campaign.example", "a long enough password")
    browser.submit("/organiser/login", {"email": "org@campaign.example", "password": "a long enough password"})
    fields = {"slug": "keyed", "title": "T", "body": "B", "require_postcode": "y", "contact_public_key": public.hex()}
    assert browser.submit("/organiser/new", fields).status_code == 302
    browser.submit("/organiser/p/keyed", {}, action="/organiser/p/keyed/open")
    assert Petition.get(Petition.slug == "keyed").status == "open"

    swapped = browser.submit("/organiser/p/keyed/edit", {**fields, "contact_public_key": other_public.hex()})
    assert swapped.status_code == 409
    removed = browser.submit("/organiser/p/keyed/edit", {**fields, "contact_public_key": ""})
    assert removed.status_code == 409
    assert bytes(Petition.get(Petition.slug == "keyed").contact_public_key) == public
    kept = browser.submit("/organiser/p/keyed/edit", {**fields, "thresholds": "100"})
    assert kept.status_code == 302 and Petition.get(Petition.slug == "keyed").thresholds == "100"
