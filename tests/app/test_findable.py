"""Results people can find: totals, certificate, a readable audit page, and the organiser's targets."""

import re

from helpers import make_petition, own_petition, sign_online

from signing import db, ledger


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
