"""Hardening: headers on every response, input refused at the edge, the Argon2id bound.

Every route of ``app.url_map`` is requested (anonymously and as an
organiser), plus every error the app can answer with, and each response is
checked for the headers DESIGN §9 promises.
"""

import threading
import time

import pytest
from flask import url_for
from helpers import OrganiserActions, Signer, make_petition, receipt_from, row_counts

from signing import db, ledger
from signing.ledger.errors import TagsBusy
from signing.ledger.throttle import TagThrottle

SAMPLE_VALUES = {
    "slug": "test",
    "token": "A" * 43,
    "size": 1,
    "leaf_index": 1,
    "choice": "hide",
    "filename": "style.css",
}


def every_route(app):
    """(endpoint, url, methods) for every rule, with sample values in its path."""
    routes = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            values = {name: SAMPLE_VALUES.get(name, "x") for name in rule.arguments}
            routes.append((rule.endpoint, url_for(rule.endpoint, **values), sorted(rule.methods - {"OPTIONS"})))
    return routes


def assert_hardened(response, development=True):
    headers = response.headers
    csp = headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "script-src" not in csp
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["X-Frame-Options"] == "DENY"
    assert "camera=()" in headers["Permissions-Policy"] and "geolocation=()" in headers["Permissions-Policy"]
    assert ("Strict-Transport-Security" in headers) is not development
    assert "Cache-Control" in headers
    for cookie in headers.getlist("Set-Cookie"):
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        assert ("Secure" in cookie) is not development


def test_every_route_and_method_carries_the_headers(app, browser, petition, operator):
    anonymous = app.test_client()
    OrganiserActions(browser).login()
    seen = 0
    for _endpoint, url, methods in every_route(app):
        for method in methods:
            for client in (anonymous, browser.client):
                response = client.open(url, method=method)
                response.get_data()  # a streamed body (the bundle) is read while its context is current
                response.close()  # as a WSGI server does: the bundle's reader slot is given back
                assert response.status_code < 500, (method, url)
                assert_hardened(response)
                seen += 1
    assert seen > 60


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/no/such/page", 404),
        ("GET", "/p/no-such-petition", 404),
        ("GET", "/p/no-such-petition/audit/heads", 404),
        ("DELETE", "/", 405),
        ("PUT", "/p/test/sign", 405),
        ("GET", "/static/style.css", 200),
        ("GET", "/static/no-such.css", 404),
    ],
)
def test_errors_and_static_files_carry_the_headers(browser, petition, method, path, status):
    response = browser.client.open(path, method=method)
    assert response.status_code == status
    assert_hardened(response)


def test_oversized_request_is_413_with_headers(browser, petition):
    response = browser.client.post("/p/test/sign", data={"name": "x" * (100 * 1024)})
    assert response.status_code == 413
    assert "larger than this service accepts" in response.get_data(as_text=True)
    assert_hardened(response)


def test_unexpected_failure_is_a_calm_500_with_headers(browser, petition, monkeypatch, caplog):
    def broken(*_args):
        raise RuntimeError("Clara Cheung S1 2HE")  # the kind of thing that must never be logged

    monkeypatch.setattr(ledger, "apply_all_schedules", broken)
    response = browser.client.get("/")
    assert response.status_code == 500
    assert "Nothing you sent was kept" in response.get_data(as_text=True)
    assert_hardened(response)
    assert "unhandled RuntimeError in public.index" in caplog.text
    assert "Clara" not in caplog.text and "S1 2HE" not in caplog.text


def test_hsts_and_secure_cookies_outside_development(make_app, petition):
    client = make_app(DEVELOPMENT=False).test_client()
    for path in ("/", "/p/test", "/p/test/sign", "/static/style.css", "/nowhere"):
        response = client.get(path, base_url="https://localhost")
        assert response.headers["Strict-Transport-Security"].startswith("max-age=")
        assert_hardened(response, development=False)


def test_onion_location_names_the_same_page_on_the_onion(make_app, petition):
    client = make_app(ONION_LOCATION="http://countersignxyz.onion/").test_client()
    response = client.get("/p/test/sign?x=1")
    assert response.headers["Onion-Location"] == "http://countersignxyz.onion/p/test/sign"
    assert client.get("/static/style.css").headers["Onion-Location"].endswith("/static/style.css")
    # A path is percent-encoded: no line break or non-Latin-1 text reaches the header.
    odd = client.get("/p/%E4%B8%AD%0d%0aSet-Cookie:x")
    assert odd.status_code == 404
    assert odd.headers["Onion-Location"] == "http://countersignxyz.onion/p/%E4%B8%AD%0D%0ASet-Cookie:x"
    # Not sent to visitors already on the onion, nor when unset.
    assert "Onion-Location" not in client.get("/p/test", base_url="http://countersignxyz.onion").headers
    assert "Onion-Location" not in make_app().test_client().get("/p/test").headers


def test_no_store_on_every_page_with_a_form_or_a_receipt(app, browser, petition, services, operator):
    """The audit of Cache-Control: a page a cache may keep has no form, no receipt and sets no cookie."""
    make_petition(services, "no-email", require_email=False)
    signed = browser.sign("no-email", Signer(email=None))
    code = receipt_from(signed)
    pages = [signed, browser.check_receipt("no-email", code)]
    OrganiserActions(browser).login()
    for client in (app.test_client(), browser.client):
        for _endpoint, url, methods in every_route(app):
            if "GET" in methods:
                page = client.get(url)
                page.get_data()
                pages.append(page)
    assert any("public" in page.headers["Cache-Control"] for page in pages)
    for page in pages:
        body = page.get_data(as_text=True)
        shows_secret = "<form" in body or code in body or 'class="receipt"' in body
        if shows_secret or page.headers.getlist("Set-Cookie"):
            assert page.headers["Cache-Control"] == "no-store", page.request.path
        if "public" in page.headers["Cache-Control"]:
            assert not shows_secret and not page.headers.getlist("Set-Cookie"), page.request.path


# --- input refused at the edge -------------------------------------------------


@pytest.mark.parametrize(
    "path, status",
    [
        ("/p/%00", 404),
        ("/p/%ff%fe", 404),
        ("/p/TEST", 404),
        ("/p/" + "a" * 65, 404),
        ("/p/test/audit/head/99999999999999999999999999", 404),
        ("/p/test/confirm/%00%01", 400),
        ("/p/test/confirm/" + "x" * 500, 400),
    ],
)
def test_path_values_that_cannot_be_valid_are_refused_before_any_lookup(browser, petition, path, status):
    before = row_counts()
    response = browser.client.get(path)
    assert response.status_code == status
    assert row_counts() == before


def test_huge_ids_in_organiser_paths_and_queries_are_4xx(browser, petition, operator):
    OrganiserActions(browser).login()
    token = browser.csrf("/organiser/p/test")
    moderate = browser.client.post(f"/organiser/p/test/names/{10**30}/hide", data={"csrf_token": token})
    assert moderate.status_code == 404
    for before in ("99999999999999999999999999", "-1", "x", "٣"):
        assert browser.client.get(f"/organiser/p/test/names?before={before}").status_code == 400


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/json", b'{"name": 5, "eligible": true}'),
        ("application/json", b"[1, 2, 3]"),
        ("text/plain", b"name=Clara"),
        ("application/xml", b"<name>Clara</name>"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=name\r\n\r\nClara\r\n--x--"),
    ],
)
def test_forms_take_only_form_bodies(browser, petition, content_type, body):
    token = browser.csrf("/p/test/sign")
    before = row_counts()
    response = browser.client.post(
        "/p/test/sign", data=body, content_type=content_type, headers={"X-CSRFToken": token}
    )
    assert response.status_code == 415
    assert "accepts only forms" in response.get_data(as_text=True)
    assert row_counts() == before


@pytest.mark.parametrize("field", ["name", "postcode", "email", "display_name"])
@pytest.mark.parametrize("bad", ["Clara\x00", "Clara\x1b[31m", "Clara\x85", "Clara\ufffd", "Clara\ufffe"])
def test_control_characters_are_refused_in_every_sign_field(browser, petition, field, bad):
    values = {"name": "Clara Cheung", "postcode": "S1 2HE", "email": "clara@example.org", "display_name": "Clara"}
    values[field] = bad
    before = row_counts()
    response = browser.sign("test", Signer(**values))
    assert response.status_code == 400
    assert "characters that cannot be accepted" in response.get_data(as_text=True)
    assert row_counts() == before


def test_undecodable_bytes_are_refused(browser, petition):
    token = browser.csrf("/p/test/sign")
    body = b"csrf_token=" + token.encode() + b"&name=Clara%ff%fe&postcode=S1+2HE&email=c%40example.org&eligible=y"
    response = browser.client.post("/p/test/sign", data=body, content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "characters that cannot be accepted" in response.get_data(as_text=True)
    # Typed as text, "%FF" is just characters.
    assert browser.sign("test", Signer(display_name="100%FF")).status_code == 200


def test_every_text_field_of_every_form_refuses_control_characters(app):
    from flask_wtf import FlaskForm
    from wtforms import StringField

    from signing.web import forms
    from signing.web.forms import no_control_characters
    from signing.web.organiser import forms as organiser_forms

    checked = 0
    for module in (forms, organiser_forms):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, FlaskForm) and value is not FlaskForm:
                for name, unbound in vars(value).items():
                    if hasattr(unbound, "field_class") and issubclass(unbound.field_class, StringField):
                        validators = unbound.kwargs.get("validators", ())
                        assert no_control_characters in validators, f"{value.__name__}.{name}"
                        checked += 1
    assert checked >= 15


# --- Argon2id as a denial-of-service lever ---------------------------------------


def test_busy_tag_slots_give_503_with_retry_after_and_store_nothing(make_app, petition, mailbox):
    app = make_app(TAG_CONCURRENCY=1, TAG_WAIT_SECONDS=0)
    throttle = app.extensions["countersign"].throttle
    from helpers import Browser

    browser = Browser(app.test_client(), mailbox)
    throttle.acquire(None)  # another request is computing a tag
    before = row_counts()
    try:
        response = browser.sign("test", Signer())
    finally:
        throttle.release()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert "busy" in response.get_data(as_text=True).lower()
    assert_hardened(response)
    assert row_counts() == before and not mailbox.deliveries
    assert browser.sign("test", Signer()).status_code == 200


def test_throttle_waits_briefly_then_refuses():
    throttle = TagThrottle(slots=1, wait_seconds=0.05)
    with throttle.slot():
        started = time.monotonic()
        with pytest.raises(TagsBusy):
            with throttle.slot():
                pass
        assert 0.04 < time.monotonic() - started < 1
    with throttle.slot():
        assert throttle.in_use == 1
    assert throttle.in_use == 0


def test_throttle_hands_slots_over_first_come_first_served():
    throttle = TagThrottle(slots=1, wait_seconds=5)
    order = []
    throttle.acquire(None)

    def waiter(name):
        with throttle.slot(patient=True):
            order.append(name)

    threads = []
    for name in ("first", "second"):
        thread = threading.Thread(target=waiter, args=(name,))
        thread.start()
        threads.append(thread)
        while len(throttle._waiters) < len(threads):
            time.sleep(0.001)
    # A newcomer that will not wait does not jump the queue.
    with pytest.raises(TagsBusy):
        throttle.acquire(0)
    throttle.release()
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second"]
    assert throttle.in_use == 0


@pytest.mark.parametrize("slots", [1, 2])
def test_paper_import_never_runs_more_tags_than_slots(app, services, monkeypatch, slots):
    import dataclasses

    import crypto.tags

    petition = make_petition(services, "paper", require_email=False)
    running, peak, lock = [0], [0], threading.Lock()
    real = crypto.tags.person_tag

    def counted(*args):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.01)
        with lock:
            running[0] -= 1
        return real(*args)

    monkeypatch.setattr(ledger.identities, "person_tag", counted)
    bounded = dataclasses.replace(services, throttle=TagThrottle(slots, 0))
    identities = [ledger.Identity(f"signer {chr(97 + i)}", "S12HE", None) for i in range(12)]
    with db.database.connection_context():
        result = ledger.add_paper_signatures(bounded, petition, identities)
    assert result.received == 12
    assert peak[0] <= slots
    if slots == 2:
        assert peak[0] == 2  # the pool still uses every slot (every core)
