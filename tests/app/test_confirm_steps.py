"""Irreversible organiser actions ask first: open (with a preview), close; a mistyped shred address says so."""

from helpers import own_petition

from signing import db
from signing.models import Petition


def status(slug):
    with db.database.connection_context():
        return Petition.get(Petition.slug == slug).status


def test_open_asks_first_with_a_preview_of_the_public_page(signed_in, organiser, services):
    own_petition(services, organiser, "draft-one", status="draft", title="Safe routes", body="Slow down.\n\nPlease.",
                 title_zh="安全上學", allowed_areas="S")
    petition_page = signed_in.client.get("/organiser/p/draft-one").get_data(as_text=True)
    assert 'href="/organiser/p/draft-one/open"' in petition_page
    asked = signed_in.client.get("/organiser/p/draft-one/open")
    page = asked.get_data(as_text=True)
    assert asked.status_code == 200 and status("draft-one") == "draft"
    assert "Preview of the public page" in page and "Safe routes" in page and "<p>Please.</p>" in page
    assert "cannot change" in page and "S postcodes" not in page or "areas only: S." in page
    assert 'action="/organiser/p/draft-one/open"' in page
    signed_in.submit("/organiser/p/draft-one/open", {})
    assert status("draft-one") == "open"
    # Asking again once open goes back to the petition.
    assert signed_in.client.get("/organiser/p/draft-one/open").status_code == 302


def test_open_preview_in_traditional_chinese(signed_in, organiser, services):
    own_petition(services, organiser, "zh-draft", status="draft", title="Safe routes", title_zh="安全上學")
    page = signed_in.client.get("/organiser/p/zh-draft/open", headers={"Accept-Language": "zh-HK"})
    text = page.get_data(as_text=True)
    assert "安全上學" in text and "預覽" in text


def test_close_asks_first(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    asked = signed_in.client.get("/organiser/p/ours/close")
    assert asked.status_code == 200 and status("ours") == "open"
    assert "cannot be opened again" in asked.get_data(as_text=True)
    signed_in.submit("/organiser/p/ours/close", {})
    assert status("ours") == "closed"
    assert signed_in.client.get("/organiser/p/ours/close").status_code == 302


def test_a_mistyped_shred_address_returns_to_the_form_with_a_clear_error(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    signed_in.submit("/organiser/p/ours/close", {})
    refused = signed_in.submit("/organiser/p/ours", {"confirm_slug": "our"}, action="/organiser/p/ours/shred")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "That is not this petition" in page
    assert 'value="our"' in page and 'aria-invalid="true"' in page
    assert "There is a problem" in page and "Bad request" not in page
    assert status("ours") == "closed"
    empty = signed_in.submit("/organiser/p/ours", {"confirm_slug": ""}, action="/organiser/p/ours/shred")
    assert empty.status_code == 400 and "Please fill in this field." in empty.get_data(as_text=True)
