"""Signer-facing pages, as a signer (and a prober) would use them."""

import re

import pytest
from helpers import Signer, make_petition, receipt_from, row_counts

from signing import ledger
from signing.models import CLOSED, Petition, Signature


def count_on_page(browser, slug):
    page = browser.client.get(f"/p/{slug}").get_data(as_text=True)
    return int(re.search(r'class="count">([\d,]+)<', page).group(1).replace(",", ""))


def test_petition_page_shows_text_count_and_link_to_sign(browser, petition):
    response = browser.client.get("/p/test")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Petition test" in page and "Residents of the area." in page
    assert count_on_page(browser, "test") == 0
    assert 'href="/p/test/sign"' in page
    # Cacheable: no form, no cookie.
    assert "public" in response.headers["Cache-Control"]
    assert "Set-Cookie" not in response.headers
    assert "<form" not in page


def test_signing_shows_receipt_once_and_counts(browser, petition):
    response = browser.sign_and_confirm("test", Signer(display_name="Clara from Sheffield"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    code = receipt_from(response)
    assert count_on_page(browser, "test") == 1
    page = browser.client.get("/p/test").get_data(as_text=True)
    assert "Clara from Sheffield" in page
    assert code not in page


def test_index_lists_open_petitions_but_not_drafts(browser, services):
    make_petition(services, "open-one")
    make_petition(services, "secret-draft", status="draft")
    page = browser.client.get("/").get_data(as_text=True)
    assert "Petition open-one" in page
    assert "secret-draft" not in page
    assert browser.client.get("/p/secret-draft").status_code == 404


def test_duplicate_signature_gets_same_page(browser, petition, mailbox):
    first = browser.sign("test", Signer())
    first_code = receipt_from(browser.confirm(mailbox.last().link))
    # The same person, written differently: same email after canonicalisation.
    second = browser.sign("test", Signer(name="CHEUNG Clara", email="  Clara.Cheung+petitions@EXAMPLE.org "))
    assert first.status_code == second.status_code == 200
    assert first.get_data() == second.get_data()
    assert dict(first.headers).keys() == dict(second.headers).keys()
    assert "<code>" not in second.get_data(as_text=True)
    assert count_on_page(browser, "test") == 1
    # Only the mailbox owner learns it was a duplicate; its link only re-issues a receipt.
    assert "already been used to sign it" in mailbox.last().body
    assert "new one for the same signature" in mailbox.last().body
    assert "Counted." in browser.check_receipt("test", first_code).get_data(as_text=True)


def test_different_people_count_separately(browser, petition):
    browser.sign_and_confirm("test", Signer())
    browser.sign_and_confirm("test", Signer(name="Wong Tai Sin", email="wts@example.net", postcode="S10 2TN"))
    assert count_on_page(browser, "test") == 2


def test_without_email_policy_dedups_by_name_and_postcode(browser, services):
    make_petition(services, "no-email", require_email=False)
    browser.sign("no-email", Signer(email=None))
    browser.sign("no-email", Signer(name="cheung, CLARA", postcode="s12he", email=None))
    assert count_on_page(browser, "no-email") == 1
    browser.sign("no-email", Signer(postcode="S2 4SU", email=None))
    assert count_on_page(browser, "no-email") == 2


def test_receipt_check_and_withdrawal(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer(display_name="Visible")))
    status = browser.check_receipt("test", code.lower().replace("-", " "))
    assert status.status_code == 200
    assert status.headers["Cache-Control"] == "no-store"
    assert "Counted." in status.get_data(as_text=True)

    withdrawn = browser.withdraw("test", code)
    assert withdrawn.status_code == 200
    assert "has been withdrawn" in withdrawn.get_data(as_text=True)
    assert count_on_page(browser, "test") == 0
    assert "Visible" not in browser.client.get("/p/test").get_data(as_text=True)
    assert "Withdrawn." in browser.check_receipt("test", code).get_data(as_text=True)
    # Withdrawing twice changes nothing and is not an error.
    assert browser.withdraw("test", code).status_code == 200
    assert count_on_page(browser, "test") == 0


def test_signing_again_after_withdrawal_counts_again(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    browser.withdraw("test", code)
    browser.sign_and_confirm("test", Signer())
    assert count_on_page(browser, "test") == 1


def test_withdrawal_needs_the_confirmation_box(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    response = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/withdraw")
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "tick the box" in page
    # The same page again, the site's own message by the box; no browser validation in English.
    assert 'class="error-summary"' in page and 'aria-invalid="true"' in page
    assert 'action="/p/test/withdraw" novalidate' in page
    assert count_on_page(browser, "test") == 1


def test_receipt_status_counts_entries_from_one_with_plurals(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    page = browser.check_receipt("test", code).get_data(as_text=True)
    assert "entry number 1 of 1 in the public log, which counts 1 signature." in page
    assert "numbers entries from 0, so yours is 0 there" in page


def test_receipt_page_offers_a_proof_download(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    response = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/receipt/proof")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.get_json()["index"] == 0


# --- bad input: a clear 4xx, and nothing written ------------------------------


@pytest.mark.parametrize(
    "token, expected",
    [(None, "Form expired"), ("forged-token", "Form expired")],
)
def test_missing_or_wrong_csrf_token_is_refused(browser, petition, token, expected):
    """A form not shown again filled in (the sign form is: tests/app/test_refill.py): a link back to it."""
    browser.client.get("/p/test/receipt")  # the form was shown: the browser holds its cookie
    before = row_counts()
    data = {"receipt": "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ", "confirm": "y"}
    if token:
        data["csrf_token"] = token
    response = browser.client.post("/p/test/withdraw", data=data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert expected in page
    assert 'href="/p/test/receipt"' in page  # back to the form, not "reload"
    assert "ABCD" not in page
    assert row_counts() == before


def test_blocked_cookies_are_named_as_the_cause(app, petition):
    """Tor Browser set to block cookies: the form's token cannot be checked; say why and what to do."""
    shown = app.test_client(use_cookies=False).get("/p/test/receipt")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', shown.get_data(as_text=True)).group(1)
    response = app.test_client(use_cookies=False).post(
        "/p/test/withdraw", data={"csrf_token": token, "receipt": "ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ", "confirm": "y"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "This form needs a cookie" in page and "allow cookies for this site" in page
    assert "reload" not in page
    assert 'href="/p/test/receipt"' in page


@pytest.mark.parametrize(
    "overrides, field_message",
    [
        ({"postcode": "NOT A POSTCODE"}, "valid UK postcode"),
        ({"postcode": "SW1A 1CA"}, "valid UK postcode"),
        ({"email": "not-an-address"}, "valid email address"),
        ({"email": "ann,bob@example.org"}, "valid email address"),
        ({"email": "<ann@example.org>"}, "valid email address"),
        ({"name": "!!!"}, "your name"),
        ({"name": "x" * 201}, "Please use at most 200 characters."),
        ({"display_name": "y" * 61}, "Please use at most 60 characters."),
        ({"name": "Clara\x00Cheung"}, "cannot be accepted"),
        ({"email": ""}, "enter your email address"),
        ({"postcode": ""}, "enter your postcode"),
        ({"eligible": None}, "confirm that you are eligible"),
    ],
)
def test_bad_form_input_rerenders_with_a_message(browser, petition, mailbox, overrides, field_message):
    before = row_counts()
    response = browser.sign("test", **overrides)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_message in page
    assert 'class="error-summary"' in page
    assert row_counts() == before
    assert not mailbox.deliveries


def test_an_empty_form_flags_every_field_in_one_round(browser, petition, mailbox):
    response = browser.sign("test", name="", postcode="", email="", eligible=None)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    expected = ("enter your name", "enter your postcode", "enter your email address", "confirm that you are eligible")
    for message in expected:
        assert message in page
    assert page.count('href="#') >= 4  # each in the error summary, linked to its field


def test_area_restriction_and_name_guidance_are_shown_before_signing(browser, services):
    make_petition(services, "areas", allowed_areas="S DN")
    for path in ("/p/areas", "/p/areas/sign"):
        assert "postcodes in these areas only: S, DN." in browser.client.get(path).get_data(as_text=True)
    assert "陳大文 and Chan Tai Man count as two different people" in browser.client.get("/p/areas/sign").get_data(
        as_text=True
    )


def test_every_bad_format_is_flagged_in_one_round(browser, services, mailbox):
    make_petition(services, "areas", allowed_areas="S")
    response = browser.sign("areas", name="!!!", postcode="SW1A 1AA", email="not-an-address", eligible=None)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    for message in ("your name", "areas only: S", "valid email address", "confirm that you are eligible"):
        assert message in page
    assert not mailbox.deliveries


def test_error_messages_never_echo_identity(browser, petition):
    response = browser.sign("test", Signer(name="Yuki Tanaka-Whitlock", email="yuki@@example.org"))
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    # The form refills what was typed (only to the person who typed it) ...
    assert 'value="yuki@@example.org"' in page
    # ... but no error message repeats it.
    errors = " ".join(re.findall(r'class="error"[^>]*>(.*?)</p>', page, re.S))
    assert "yuki" not in errors.lower()


def test_postcode_outside_allowed_areas_is_refused(browser, services):
    make_petition(services, "sheffield", allowed_areas="S")
    response = browser.sign("sheffield", Signer(postcode="SW1A 1AA"))
    assert response.status_code == 400
    assert "postcodes in these areas only: S" in response.get_data(as_text=True)
    assert browser.sign("sheffield", Signer(postcode="S1 2HE")).status_code == 200


def test_unknown_petition_is_404(browser, petition):
    assert browser.client.get("/p/nope").status_code == 404
    assert browser.client.get("/p/nope/sign").status_code == 404
    token = browser.csrf("/p/test/sign")
    assert browser.client.post("/p/nope/withdraw", data={"csrf_token": token}).status_code == 404


def test_closed_petition_refuses_signatures_and_keeps_its_count(browser, petition):
    code = receipt_from(browser.sign_and_confirm("test", Signer()))
    token = browser.csrf("/p/test/sign")
    Petition.update(status=CLOSED).where(Petition.id == petition.id).execute()
    before = row_counts()
    response = browser.client.post(
        "/p/test/sign",
        data={
            "csrf_token": token,
            "name": "Ann Other",
            "postcode": "S1 1AA",
            "email": "a@example.org",
            "eligible": "y",
        },
    )
    assert response.status_code == 409
    assert "This petition has closed" in response.get_data(as_text=True)
    assert browser.client.get("/p/test/sign").status_code == 409
    assert row_counts() == before
    assert count_on_page(browser, "test") == 1
    assert "count is final" in browser.client.get("/p/test").get_data(as_text=True)
    # The receipt still reads as counted, but withdrawal is over.
    assert "Counted." in browser.check_receipt("test", code).get_data(as_text=True)


@pytest.mark.parametrize(
    "code, status, message",
    [
        ("ABCD", 400, "26 letters"),
        ("!!!!-????", 400, "26 letters"),
        ("A" * 101, 400, "Please use at most 100 characters."),
        ("AAAA-AAAA-AAAA-AAAA-AAAA-AAAA-AA", 404, "No signature on this petition"),
    ],
)
def test_malformed_or_unknown_receipt(browser, petition, code, status, message):
    before = row_counts()
    response = browser.check_receipt("test", code)
    assert response.status_code == status
    assert message in response.get_data(as_text=True)
    assert row_counts() == before
    withdrawal = browser.withdraw("test", code)
    assert 400 <= withdrawal.status_code < 500
    assert row_counts() == before


def test_oversized_request_is_413(browser, petition):
    token = browser.csrf("/p/test/sign")
    response = browser.client.post("/p/test/sign", data={"csrf_token": token, "name": "x" * 70_000})
    assert response.status_code == 413
    assert "larger than this service accepts" in response.get_data(as_text=True)


def test_bad_pagination_parameter_is_400(browser, petition):
    assert browser.client.get("/p/test?before=abc").status_code == 400
    assert browser.client.get("/p/test?before=5").status_code == 200


def test_display_names_paginate(app, browser, petition):
    app.config["DISPLAY_NAMES_PER_PAGE"] = 2
    for i in range(3):
        browser.sign_and_confirm("test", Signer(email=f"p{i}@example.org", display_name=f"Signer number {i}"))
    first = browser.client.get("/p/test").get_data(as_text=True)
    assert "Signer number 2" in first and "Signer number 1" in first and "Signer number 0" not in first
    next_link = re.search(r'href="(/p/test\?before=\d+)"', first).group(1)
    second = browser.client.get(next_link).get_data(as_text=True)
    assert "Signer number 0" in second and "Signer number 2" not in second


def test_online_signature_supersedes_paper(services, browser, petition, mailbox):
    # A paper signature by the same person, as the organiser's import would add it.
    identity = ledger.canonical_identity(
        services, petition, name="Clara Cheung", postcode="S1 2HE", email="x@example.org"
    )
    person, _ = ledger.compute_tags(services, petition, identity)
    Signature.create(petition=petition, person_tag=person, channel="paper", status="counted", day="2026-11-01")
    ledger.publish(services, petition, force=True)
    assert count_on_page(browser, "test") == 1
    browser.sign("test", Signer())
    browser.confirm(mailbox.last().link)
    # Until close both count: a "superseded" withdrawal in the batch after an
    # online signature would tell a prober that the person signed on paper.
    assert Signature.get(Signature.channel == "paper").status == "counted"
    assert count_on_page(browser, "test") == 2
    # At close all supersedes are settled together, and the final head counts the person once.
    ledger.close_petition(services, petition)
    assert count_on_page(browser, "test") == 1
    paper = Signature.get(Signature.channel == "paper")
    assert (paper.status, paper.withdraw_reason) == ("withdrawn", "superseded")
