"""Results people can find: totals, certificate, a readable audit page, and the organiser's targets."""

import re
from datetime import datetime, time, timedelta

from babel.dates import format_date
from helpers import make_petition, own_petition, sign_online

from signing import db, ledger


def format_day(day):
    return format_date(day, format="long", locale="en_GB")


def test_petition_page_links_to_totals_and_the_audit_page_and_shows_targets(browser, services):
    make_petition(services, "aims", require_email=False, thresholds="2 1000")
    sign_online(browser, "aims", "Clara Cheung")
    sign_online(browser, "aims", "Bo Li", postcode="S2 4SU")
    page = browser.client.get("/p/aims").get_data(as_text=True)
    assert 'href="/p/aims/totals"' in page and 'href="/p/aims/audit"' in page
    assert 'href="/p/aims/certificate"' not in page  # not closed yet
    assert "2 signatures: reached" in page
    assert "1,000 signatures · 998 more needed" in page


def test_a_closed_petition_links_to_its_certificate(browser, services):
    petition = make_petition(services, "done", require_email=False)
    with db.database.connection_context():
        ledger.close_petition(services, petition)
    page = browser.client.get("/p/done").get_data(as_text=True)
    assert 'href="/p/done/certificate"' in page
    assert browser.client.get("/p/done/certificate").status_code == 200


def test_audit_page_says_the_latest_signed_count_and_how_to_verify(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    sign_online(signed_in, "ours", "Clara Cheung")
    response = signed_in.client.get("/p/ours/audit")
    page = response.get_data(as_text=True)
    assert response.status_code == 200 and response.mimetype == "text/html"
    assert re.search(r'class="signed-count">1<', page)
    assert "signing-audit verify ours-bundle.jsonl" in page
    assert 'href="/p/ours/audit/bundle"' in page
    assert re.search(r"\d{1,2} \w+ 20\d\d \d\d:\d\d UTC", page)
    assert services.keyring.log_key_id in page
    bundle = signed_in.client.get("/p/ours/audit/bundle")
    assert bundle.status_code == 200


def test_audit_page_in_traditional_chinese(browser, services):
    make_petition(services, "zh", require_email=False)
    page = browser.client.get("/p/zh/audit", headers={"Accept-Language": "zh-HK"}).get_data(as_text=True)
    assert "signing-audit verify zh-bundle.jsonl" in page
    assert "年" in page and "UTC" in page
    assert browser.client.get("/p/nothing/audit").status_code == 404


def test_a_petition_closed_early_shows_when_it_closed_not_its_planned_date(signed_in, organiser, services):
    today = services.clock().date()
    own_petition(services, organiser, "early", closes_on=today + timedelta(days=300))
    token = signed_in.csrf("/organiser/p/early")
    signed_in.client.post("/organiser/p/early/close", data={"csrf_token": token, "confirm": "y"})
    page = signed_in.client.get("/p/early").get_data(as_text=True)
    assert re.search(rf'class="closed-on">{today.day} \w+ {today.year}<', page)
    assert format_day(today + timedelta(days=300)) not in page
    certificate = signed_in.client.get("/p/early/certificate").get_data(as_text=True)
    assert re.search(rf'class="closed-at">{today.day} \w+ {today.year} \d\d:\d\d UTC<', certificate)


def test_a_petition_past_its_closing_date_closed_at_the_end_of_that_day(browser, services):
    last_day = services.clock().date() - timedelta(days=3)
    make_petition(services, "lapsed", require_email=False, opens_on=last_day - timedelta(days=5), closes_on=last_day)
    browser.client.get("/p/lapsed")
    with db.database.connection_context():
        petition = ledger.petition_by_slug("lapsed")
    assert petition.status == ledger.CLOSED
    assert petition.closed_at == datetime.combine(last_day, time(23, 59))


def test_a_sign_link_from_a_page_cached_before_closing_explains_kindly(browser, services):
    petition = make_petition(services, "shut", require_email=False)
    token = browser.csrf("/p/shut/sign")
    with db.database.connection_context():
        ledger.close_petition(services, petition)
    for response in (
        browser.client.get("/p/shut/sign"),
        browser.client.post("/p/shut/sign", data={"csrf_token": token, "name": "Ann Lee", "postcode": "S1 2HE",
                                                  "eligible": "y"}),
    ):
        page = response.get_data(as_text=True)
        assert response.status_code == 409
        assert "This petition has closed" in page and "Nothing you typed was kept" in page
        assert 'href="/p/shut"' in page and "Ann Lee" not in page
