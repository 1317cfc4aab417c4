"""The page that says what is kept, what is public and who can see what; the claims elsewhere agree."""

import pytest


@pytest.fixture
def client(app):
    return app.test_client()


def test_privacy_page_names_every_party_and_the_limits(client):
    page = client.get("/privacy").get_data(as_text=True)
    for heading in ("What you type", "What everyone can see", "What the organisers can see",
                    "council", "What the people running this site could find out", "What mail providers see"):
        assert heading in page
    assert "can test a guess" in page and "district" in page
    assert "have not published their name" in page


def test_operator_and_notice_come_from_settings(make_app):
    app = make_app(OPERATOR_NAME="Hong Kong Watch UK", OPERATOR_CONTACT="privacy@example.org",
                   PRIVACY_NOTICE_URL="https://example.org/privacy-notice")
    page = app.test_client().get("/privacy").get_data(as_text=True)
    assert "Hong Kong Watch UK" in page and "privacy@example.org" in page
    assert 'href="https://example.org/privacy-notice"' in page


@pytest.mark.parametrize("path", ["/", "/p/test", "/p/test/sign", "/p/test/receipt", "/organiser/login"])
def test_every_page_links_to_it_and_claims_no_more(client, petition, path):
    page = client.get(path).get_data(as_text=True)
    assert 'href="/privacy"' in page
    assert "never stored" not in page
    assert "including the people running this site" not in page
    assert "no name, email address, postcode" not in page
