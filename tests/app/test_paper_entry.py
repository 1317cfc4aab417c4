"""Typing up paper signatures: add another, inline errors, Chinese headers, encodings, a template, one page."""

import re

from helpers import own_petition, upload

from signing import db
from signing.models import Signature


def paper_count(browser):
    """Paper signatures counted once the next batch has settled what was received."""
    browser.publish()
    with db.database.connection_context():
        return Signature.select().where(Signature.channel == "paper").count()


def test_one_at_a_time_returns_to_an_empty_form_saying_received(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    sent = signed_in.submit("/organiser/p/ours", {"name": "Mo Farah", "postcode": "S1 2HE"},
                            action="/organiser/p/ours/paper", follow_redirects=True)
    page = sent.get_data(as_text=True)
    assert sent.status_code == 200 and "Received. Type the next one below." in page
    assert "Mo Farah" not in page and re.search(r'<input[^>]*name="name"[^>]*value=""', page)
    assert paper_count(signed_in) == 1
    # The same person again: still just "received", nothing that says they had signed.
    again = signed_in.submit("/organiser/p/ours", {"name": "mo farah", "postcode": "s12he"},
                             action="/organiser/p/ours/paper", follow_redirects=True)
    text = again.get_data(as_text=True).lower()
    assert "received" in text and "already" not in text.split("add paper signatures")[0] and "skipped" not in text


def test_errors_are_inline_with_what_was_typed_kept(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    refused = signed_in.submit("/organiser/p/ours", {"name": "Mo Farah", "postcode": "", "email": "mo@"},
                               action="/organiser/p/ours/paper")
    page = refused.get_data(as_text=True)
    assert refused.status_code == 400
    assert "The postcode is missing." in page and "not a valid UK postcode" not in page
    assert "Check the email address: it is not valid." in page
    assert 'value="Mo Farah"' in page and 'value="mo@"' in page
    assert 'id="postcode-error"' in page and "There is a problem" in page
    bad = signed_in.submit("/organiser/p/ours", {"name": "", "postcode": "XX"}, action="/organiser/p/ours/paper")
    assert "The name is missing." in bad.get_data(as_text=True) and 'value="XX"' in bad.get_data(as_text=True)
    assert paper_count(signed_in) == 0


def test_chinese_headers_are_accepted(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    content = "姓名,郵政編碼,電郵\n陳大文,S1 2HE,\n李小明,S2 4SU,siu.ming@example.hk\n".encode()
    response = upload(signed_in, "ours", content)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert "Received 2 signatures from this file." in response.get_data(as_text=True)
    assert paper_count(signed_in) == 2


def test_a_utf16_file_with_its_mark_is_read(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    content = "name,postcode\r\n陳大文,S1 2HE\r\n".encode("utf-16")
    response = upload(signed_in, "ours", content)
    assert response.status_code == 200 and paper_count(signed_in) == 1


def test_big5_and_unmarked_utf16_say_what_to_do(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    big5, unmarked = "name,postcode\n陳大文,S1 2HE\n".encode("cp950"), "name,postcode\nA B,S1 2HE\n".encode("utf-16-le")
    for content in (big5, unmarked):
        response = upload(signed_in, "ours", content)
        page = response.get_data(as_text=True)
        assert response.status_code == 400
        assert "CSV UTF-8 (Comma delimited)" in page and "Big5" in page
    assert paper_count(signed_in) == 0


def test_an_empty_postcode_is_missing_not_invalid(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    response = upload(signed_in, "ours", b"name,postcode\nAnn Lee,S1 2HE\nBo Li,\n,S2 4SU\n")
    page = response.get_data(as_text=True)
    assert "Line 3: the postcode is missing" in page and "Line 4: the name is missing" in page
    assert "Nothing from this file was received" in page and "2 lines were rejected" in page
    assert "Ann Lee" not in page


def test_result_is_on_the_petition_page_with_the_forms(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    response = upload(signed_in, "ours", b"name,postcode\nAnn Lee,S1 2HE\n")
    page = response.get_data(as_text=True)
    assert 'action="/organiser/p/ours/paper/upload"' in page and "Received 1 signature from this file." in page
    assert re.search(r"<h1[^>]*>Petition ours</h1>", page)


def test_template_download(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    template = signed_in.client.get("/organiser/p/ours/paper/template.csv")
    assert template.status_code == 200 and template.mimetype == "text/csv"
    assert template.get_data() == "\ufeffname,postcode,email\n".encode()
    # The template itself, filled in, is accepted.
    assert upload(signed_in, "ours", template.get_data() + b"Ann Lee,S1 2HE,\n").status_code == 200
