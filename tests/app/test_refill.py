"""Form pages shown again with what was typed: switching language, and after a refused cookie."""

import logging
import re

import pytest
from helpers import CSRF_RE, Signer, assert_no_trace, captured_logs, own_petition, row_counts

TYPED = {"name": "Clara Cheung", "postcode": "S1 2HE", "email": "clara@example.org", "display_name": "Clara C"}


def page(response):
    return response.get_data(as_text=True)


def switch_action(text, tag="zh-Hant"):
    """The formaction of the page's language button (a button of the form, not a link)."""
    match = re.search(rf'formaction="(/lang/{tag}\?next=[^"]+)"[^>]*lang="{tag}"', text)
    assert match, "no language button on the page"
    return match.group(1).replace("&amp;", "&")


def test_the_language_switch_of_the_sign_form_is_a_button_of_that_form(browser, petition):
    text = page(browser.client.get("/p/test/sign"))
    nav = re.search(r'<nav class="language".*?</nav>', text, re.S).group(0)
    assert "<a " not in nav and 'form="sign-form"' in nav and 'id="sign-form"' in text
    # Enter in a field presses the form's first button in document order: a hidden copy of "Sign the petition".
    buttons = re.findall(r'<button[^>]*form="sign-form"[^>]*>([^<]*)</button>', nav)
    assert buttons[0] == "Sign the petition" and buttons[1] == "繁體中文"
    first = re.search(r'<button[^>]*form="sign-form"[^>]*>', nav).group(0)
    assert "formaction" not in first and 'tabindex="-1"' in first and 'aria-hidden="true"' in first


def test_switching_language_keeps_what_was_typed_and_signs_nothing(
    browser, petition, mailbox, caplog, capfd, instance_path
):
    action = switch_action(page(browser.client.get("/p/test/sign")))
    assert action == "/lang/zh-Hant?next=/p/test/sign"
    before = row_counts()
    caplog.set_level(logging.DEBUG)
    token = browser.csrf("/p/test/sign")
    response = browser.client.post(action, data={"csrf_token": token, **TYPED, "eligible": "y"})
    logs = captured_logs(caplog, capfd)
    text = page(response)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Set-Cookie"].startswith("lang=zh_Hant;")
    assert '<html lang="zh-Hant">' in text and "聯署" in text
    for value in TYPED.values():
        assert f'value="{value}"' in text
    assert not re.search(r'<input[^>]*checked[^>]*id="eligible"|<input[^>]*id="eligible"[^>]*checked', text)
    assert "error-summary" not in text  # not submitted, so nothing to flag
    assert row_counts() == before and not mailbox.deliveries
    # The switch back is a button of the same form again, to the same page.
    assert switch_action(text, "en") == "/lang/en?next=/p/test/sign"
    # Remembered: the next page is in Chinese.
    assert '<html lang="zh-Hant">' in page(browser.client.get("/p/test"))
    assert_no_trace(instance_path, logs, [Signer(**{k: TYPED[k] for k in ("name", "postcode", "email")})])


def test_switching_language_is_refused_without_the_form_token(browser, petition):
    browser.client.get("/p/test/sign")
    response = browser.client.post("/lang/zh-Hant?next=/p/test/sign", data=TYPED)
    assert response.status_code == 400
    assert "lang=" not in response.headers.get("Set-Cookie", "")


def test_switching_language_on_the_receipt_form_keeps_the_code(browser, petition):
    text = page(browser.client.get("/p/test/receipt"))
    assert 'form="receipt-form"' in text
    token = browser.csrf("/p/test/receipt")
    response = browser.client.post(switch_action(text), data={"csrf_token": token, "receipt": "ABCD-EFGH"})
    assert response.status_code == 200 and 'value="ABCD-EFGH"' in page(response)
    assert '<html lang="zh-Hant">' in page(response) and "error" not in page(response)


def test_switching_language_on_the_status_page_shows_the_status_again(browser, petition, mailbox):
    code = re.search(r"<code>([A-Z2-7-]+)</code>", page(browser.sign_and_confirm("test"))).group(1)
    status = page(browser.check_receipt("test", code))
    form = re.search(r'<nav class="language".*?</nav>', status, re.S).group(0)
    assert 'action="/lang/zh-Hant?next=/p/test/withdraw"' in form and f'value="{code}"' in form
    token = CSRF_RE.search(status).group(1)
    response = browser.client.post("/lang/zh-Hant?next=/p/test/withdraw", data={"csrf_token": token, "receipt": code})
    text = page(response)
    assert response.status_code == 200 and '<html lang="zh-Hant">' in text
    assert "撤回" in text and f'value="{code}"' in text
    assert 'action="/lang/en?next=/p/test/withdraw"' in text
    assert "Set-Cookie" in response.headers and response.headers["Cache-Control"] == "no-store"


def test_switching_language_on_the_paper_form_keeps_what_was_typed(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    text = page(signed_in.client.get("/organiser/p/ours"))
    assert 'form="paper-form"' in text
    token = signed_in.csrf("/organiser/p/ours")
    response = signed_in.client.post(
        switch_action(text), data={"csrf_token": token, "name": "Mo Farah", "postcode": "S1 2HE"}
    )
    text = page(response)
    assert response.status_code == 200 and '<html lang="zh-Hant">' in text
    assert 'value="Mo Farah"' in text and 'value="S1 2HE"' in text
    assert switch_action(text, "en") == "/lang/en?next=/organiser/p/ours"


def test_pages_without_a_form_keep_the_plain_link(browser, petition):
    text = page(browser.client.get("/p/test"))
    assert '<a href="/lang/zh-Hant?next=/p/test"' in text and "formaction" not in text


@pytest.mark.parametrize("target", ["https://evil.example/", "/nowhere", "//evil.example/p"])
def test_a_switch_to_elsewhere_goes_nowhere_else(browser, petition, target):
    token = browser.csrf("/p/test/sign")
    response = browser.client.post(f"/lang/zh-Hant?next={target}", data={"csrf_token": token, **TYPED})
    assert response.status_code == 303
    assert response.headers["Location"] in ("/", target) and "evil" not in response.headers["Location"]


# --- a refused cookie on the sign form: the form again, filled in ------------------------------


def test_refused_cookie_shows_the_sign_form_again_filled_in(app, petition, caplog, capfd, instance_path):
    """Tor Browser blocking cookies: the explanation, then the same form with what was typed (never the tick box)."""
    shown = app.test_client(use_cookies=False).get("/p/test/sign")
    token = CSRF_RE.search(page(shown)).group(1)
    before = row_counts()
    caplog.set_level(logging.DEBUG)
    response = app.test_client(use_cookies=False).post(
        "/p/test/sign", data={"csrf_token": token, **TYPED, "eligible": "y"}
    )
    logs = captured_logs(caplog, capfd)
    text = page(response)
    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store"
    assert "This form needs a cookie" in text and "allow cookies for this site" in text and "reload" not in text
    assert text.index("This form needs a cookie") < text.index('id="sign-form"')
    for value in TYPED.values():
        assert f'value="{value}"' in text
    assert 'id="eligible"' in text and not re.search(r'<input[^>]*checked', text)
    assert row_counts() == before
    assert_no_trace(instance_path, logs, [Signer(**{k: TYPED[k] for k in ("name", "postcode", "email")})])


def test_expired_form_shows_the_sign_form_again_filled_in(browser, petition):
    browser.client.get("/p/test/sign")  # the browser holds the cookie, but the token is stale or forged
    response = browser.client.post("/p/test/sign", data={"csrf_token": "forged", **TYPED, "eligible": "y"})
    text = page(response)
    assert response.status_code == 400 and "Form expired" in text and "send the form below again" in text
    assert 'value="Clara Cheung"' in text and not re.search(r'<input[^>]*checked', text)


def test_refused_cookie_in_chinese(app, petition):
    client = app.test_client(use_cookies=False)
    response = client.post("/p/test/sign", data=TYPED, headers={"Accept-Language": "zh-HK"})
    text = page(response)
    assert response.status_code == 400 and '<html lang="zh-Hant">' in text
    assert 'value="Clara Cheung"' in text and "Cookie" in text


def test_a_refused_cookie_on_the_language_switch_shows_the_sign_form_again(app, petition):
    client = app.test_client(use_cookies=False)
    response = client.post("/lang/zh-Hant?next=/p/test/sign", data=TYPED)
    text = page(response)
    assert response.status_code == 400 and "This form needs a cookie" in text
    assert 'value="Clara Cheung"' in text and "lang=" not in response.headers.get("Set-Cookie", "")
    assert switch_action(text) == "/lang/zh-Hant?next=/p/test/sign"
