"""The receipt after signing: shown by a redirect (Post/Redirect/Get), never in a URL or a cookie."""

import base64
import dataclasses
from datetime import timedelta

from helpers import CSRF_RE, Browser, Signer, make_petition, receipt_from

from signing import db
from signing.models import Inbox, ReceiptFlash


def sign_without_following(browser, slug, signer=None):
    signer = signer or Signer(email=None)
    return browser.submit(
        f"/p/{slug}/sign", {"name": signer.name, "postcode": signer.postcode, "eligible": "y"}
    )


def session_cookie(browser):
    return browser.client.get_cookie("session").value


def test_signing_redirects_to_the_receipt_and_a_reload_shows_the_same_code(browser, services):
    make_petition(services, "plain", require_email=False)
    posted = sign_without_following(browser, "plain")
    assert posted.status_code == 303
    assert posted.headers["Location"] == "/p/plain/signed"
    shown = browser.client.get("/p/plain/signed")
    assert shown.status_code == 200 and shown.headers["Cache-Control"] == "no-store"
    code = receipt_from(shown)
    reloaded = browser.client.get("/p/plain/signed")
    assert receipt_from(reloaded) == code
    assert "only your first signature counts" in reloaded.get_data(as_text=True)
    with db.database.connection_context():
        assert Inbox.select().count() == 1  # the reload sent nothing


def test_the_code_is_in_no_url_and_no_readable_cookie(browser, services):
    make_petition(services, "plain", require_email=False)
    posted = sign_without_following(browser, "plain")
    code = receipt_from(browser.client.get("/p/plain/signed"))
    compact = code.replace("-", "")
    assert compact not in posted.headers["Location"].replace("-", "")
    cookie = session_cookie(browser)
    payload = cookie.split(".")[0] if not cookie.startswith(".") else cookie.split(".")[1]
    readable = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    for text in (code, compact):
        assert text.encode() not in readable and text.encode() not in cookie.encode()
    with db.database.connection_context():
        (row,) = ReceiptFlash.select()
        assert code.encode() not in bytes(row.sealed) and compact.encode() not in bytes(row.sealed)


def test_another_browser_or_petition_sees_no_code(app, browser, services):
    make_petition(services, "plain", require_email=False)
    make_petition(services, "other", require_email=False)
    sign_without_following(browser, "plain")
    stranger = app.test_client().get("/p/plain/signed")
    assert stranger.status_code == 410
    assert "No receipt code to show" in stranger.get_data(as_text=True)
    assert browser.client.get("/p/other/signed").status_code == 410


def test_the_code_can_be_removed_from_the_device(browser, services):
    make_petition(services, "plain", require_email=False)
    sign_without_following(browser, "plain")
    page = browser.client.get("/p/plain/signed").get_data(as_text=True)
    token = CSRF_RE.search(page).group(1)
    removed = browser.client.post("/p/plain/signed", data={"csrf_token": token})
    assert removed.status_code == 303 and removed.headers["Location"] == "/p/plain"
    assert browser.client.get("/p/plain/signed").status_code == 410
    with db.database.connection_context():
        assert ReceiptFlash.select().count() == 0


def test_the_code_expires(app, browser, services, mailbox):
    make_petition(services, "plain", require_email=False)
    sign_without_following(browser, "plain")
    later = services.clock() + timedelta(minutes=11)
    app.extensions["countersign"] = dataclasses.replace(services, clock=lambda: later)
    assert browser.client.get("/p/plain/signed").status_code == 410
    # The next signature, from anyone, sweeps expired records away.
    someone_else = Browser(app.test_client(), mailbox, app)
    sign_without_following(someone_else, "plain", Signer(name="Another Person", email=None))
    with db.database.connection_context():
        assert ReceiptFlash.select().count() == 1


def test_the_background_thread_deletes_expired_codes_when_no_one_signs_after(app, browser, services):
    make_petition(services, "plain", require_email=False)
    sign_without_following(browser, "plain")
    browser.publish()
    with db.database.connection_context():
        assert ReceiptFlash.select().count() == 1  # not expired yet: kept
    later = services.clock() + timedelta(minutes=11)
    app.extensions["countersign"] = dataclasses.replace(services, clock=lambda: later)
    browser.publish()  # the thread's tick
    with db.database.connection_context():
        assert ReceiptFlash.select().count() == 0


def test_confirming_redirects_too_and_a_reload_does_not_reconfirm(browser, petition, mailbox):
    browser.sign("test")
    link = mailbox.last().link
    path = link.split("example.org", 1)[1]
    token = CSRF_RE.search(browser.client.get(path).get_data(as_text=True)).group(1)
    posted = browser.client.post(path, data={"csrf_token": token})
    assert posted.status_code == 303 and posted.headers["Location"] == "/p/test/signed"
    first = browser.client.get("/p/test/signed")
    assert "your signature is confirmed" in first.get_data(as_text=True)
    assert receipt_from(browser.client.get("/p/test/signed")) == receipt_from(first)
