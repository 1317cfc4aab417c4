"""A real browser with JavaScript off, against a real server: sign, confirm, check, withdraw,
organise, in English and Traditional Chinese; axe-core and layout checks on every page; and
signing with the keyboard alone. How the pieces fit: tests/e2e/pages.py.

Needs playwright (the test extra), Debian's chromium and axe-core (npm ci --prefix tests/e2e);
without them these tests skip. Screenshots land in artifacts/screenshots/.
"""

import re

import pytest
from helpers import POSTGRES_URL
from pages import (
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    TWO_FACTOR_EMAILS,
    Axe,
    DemoServer,
    Visitor,
    require_axe,
    require_browser,
)

pytestmark = pytest.mark.slow

LANGUAGES = ["en", "zh-Hant"]
RECEIPT_RE = re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{2,4}){6}")
# What each language must say, so a page is checked to be in it, not just labelled so.
SAYS = {
    "en": {
        "petition": "Sign this petition",
        "signed": "Thank you for signing",
        "counted": ("Counted.", "Received, waiting."),
        "withdrawn": "Your signature has been withdrawn",
        "withdrawn_status": "Withdrawn.",
        "mailbox": "Check your email",
        "subject": "Please confirm your signature: Make our council's e-petitions safe to sign",
        "confirmed": "Thank you: your signature is confirmed",
        "dashboard": "Your petitions",
        "closed": "closed",
        "problem": "There is a problem",
        "demo_title": "Make our council's e-petitions safe to sign",
    },
    "zh-Hant": {
        "petition": "聯署這份請願",
        "signed": "感謝您參與聯署",
        "counted": ("已計算。", "已收到，等待中。"),
        "withdrawn": "您的聯署已撤回",
        "withdrawn_status": "已撤回。",
        "mailbox": "請查看您的電郵",
        "subject": "請確認您的聯署：讓市議會的網上請願可以安全聯署",
        "confirmed": "謝謝您：您的聯署已確認",
        "dashboard": "您的請願",
        "closed": "已截止",
        "problem": "出現問題",
        "demo_title": "讓市議會的網上請願可以安全聯署",
    },
}
SIGNERS = {
    "en": {"name": "Clara Cheung", "display": "Clara from Sheffield", "email": "clara@example.org"},
    "zh-Hant": {"name": "陳大文", "display": "陳大文", "email": "chan.tai.man@example.org"},
}


@pytest.fixture(scope="module")
def browser():
    if POSTGRES_URL:
        pytest.skip("the browser tests run once, in the SQLite run: their server keeps its own SQLite file")
    sync_api = require_browser()
    require_axe()
    from pages import CHROMIUM, CHROMIUM_ARGS

    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(browser, tmp_path_factory):
    demo = DemoServer(tmp_path_factory.mktemp("e2e"))
    try:
        demo.start()
        yield demo
    finally:
        demo.stop()


@pytest.fixture(scope="module")
def axe(browser):
    runner = Axe(browser)
    yield runner
    runner.close()


@pytest.fixture
def visitor(browser, server, axe, request):
    people = []

    def make(language, label):
        person = Visitor(browser, server, axe, language, label)
        people.append(person)
        return person

    yield make
    for person in people:
        person.close()


def sign_form(person, name, display=None, email=None, postcode="S1 2HE"):
    page = person.page
    page.fill("#name", name)
    if page.locator("#postcode").count():
        page.fill("#postcode", postcode)
    if email is not None:
        page.fill("#email", email)
    if display is not None:
        page.fill("#display_name", display)
    page.check("#eligible")


@pytest.mark.parametrize("language", LANGUAGES)
def test_sign_check_and_withdraw(visitor, language):
    """The whole life of a signature on a petition that asks for no email."""
    person = visitor(language, "public")
    says, signer = SAYS[language], SIGNERS[language]
    page = person.page

    person.goto("/")
    person.audit("index")
    person.follow("a[href='/p/plain']")
    assert says["petition"] in person.text()
    person.audit("petition")

    person.follow("a.button[href='/p/plain/sign']")
    person.audit("sign")
    person.submit("form[action='/p/plain/sign'] button[type=submit]")
    assert says["problem"] in person.text()
    name_field = page.locator("#name")
    assert name_field.get_attribute("aria-invalid") == "true"
    assert "name-error" in name_field.get_attribute("aria-describedby")
    person.audit("sign-errors")

    sign_form(person, signer["name"], display=signer["display"])
    person.submit("form[action='/p/plain/sign'] button[type=submit]")
    assert says["signed"] in person.text()
    receipt = page.inner_text(".receipt code")
    assert RECEIPT_RE.fullmatch(receipt)
    person.audit("signed", one_time=True)

    person.follow("main a[href='/p/plain/receipt']")
    person.audit("receipt")
    page.fill("#receipt", receipt.lower().replace("-", " "))
    person.submit("form[action='/p/plain/receipt'] button[type=submit]")
    assert any(state in person.text() for state in says["counted"])
    person.audit("receipt-status")

    page.check("#confirm")
    person.submit("form[action='/p/plain/withdraw'] button[type=submit]")
    assert says["withdrawn"] in person.text()
    person.audit("withdrawn")

    person.goto("/p/plain/receipt")
    page.fill("#receipt", receipt)
    person.submit("form[action='/p/plain/receipt'] button[type=submit]")
    assert says["withdrawn_status"] in page.inner_text(".status")

    person.goto("/p/plain/totals")
    person.audit("totals")
    person.goto("/p/charted/totals")
    charts = page.locator("svg.chart[role=img]")
    assert charts.count() == 2
    for index in range(2):
        chart = charts.nth(index)
        title = chart.locator(f"title#{chart.get_attribute('aria-labelledby')}")
        assert title.text_content().strip()
    person.audit("totals-charts")
    response = person.goto("/p/no-such-petition")
    assert response.status == 404
    person.audit("not-found")
    person.assert_clean()


@pytest.mark.parametrize("language", LANGUAGES)
def test_sign_with_email_confirmation(visitor, server, language):
    """The demo petition asks for email: the link arrives (printed by the demo) in the signer's language."""
    person = visitor(language, "email")
    says, signer = SAYS[language], SIGNERS[language]
    page = person.page

    person.goto("/p/demo")
    assert page.inner_text("h1") == says["demo_title"]
    person.audit("demo-petition")
    person.follow("a.button[href='/p/demo/sign']")
    sign_form(person, signer["name"], email=signer["email"])
    mark = server.mail_mark()
    person.submit("form[action='/p/demo/sign'] button[type=submit]")
    assert says["mailbox"] in person.text()
    person.audit("check-mailbox")

    headers, body = server.mail_since(mark)
    assert headers["Subject"] == says["subject"]
    assert headers["Content-Language"] == language
    assert signer["email"] not in body

    person.page.goto(server.confirm_link(body))
    person.audit("confirm")
    person.submit("form[action*='/confirm/'] button[type=submit]")
    assert says["confirmed"] in person.text()
    assert RECEIPT_RE.fullmatch(page.inner_text(".receipt code"))
    person.audit("confirmed", one_time=True)
    person.assert_clean()


@pytest.mark.parametrize("language", LANGUAGES)
def test_organiser_creates_opens_and_closes_a_petition(visitor, language):
    """Chinese is chosen here with the language link (a cookie), not Accept-Language."""
    person = visitor("en", "organiser")
    says = SAYS[language]
    page = person.page
    slug = f"e2e-{language.lower()}"

    person.goto("/organiser/login")
    if language != "en":
        responses = []
        page.on("response", lambda response: responses.append(response))
        person.follow("nav.language a[hreflang='zh-Hant']")
        switch = next(r for r in responses if "/lang/" in r.url)
        assert "lang=zh_Hant" in (switch.header_value("set-cookie") or "")
        assert page.url.endswith("/organiser/login")
        person.language = language
    person.audit("login")
    person.submit("form[action='/organiser/login'] button[type=submit]")
    assert says["problem"] in person.text()
    person.audit("login-errors")
    page.fill("#email", ORGANISER_EMAIL)
    page.fill("#password", ORGANISER_PASSWORD)
    person.submit("form[action='/organiser/login'] button[type=submit]")
    assert says["dashboard"] in page.inner_text("h1")
    person.audit("dashboard")

    person.follow("a[href='/organiser/new']")
    person.audit("new")
    person.submit("form[action='/organiser/new'] button[type=submit]")
    assert says["problem"] in person.text()
    person.audit("new-errors")
    page.fill("#slug", slug)
    page.fill("#title", "Safe routes to school")
    page.fill("#body", "Cars drive too fast past our schools.\n\nWe ask for 20 mph.")
    page.fill("#eligibility", "Parents and pupils.")
    page.fill("#title_zh", "讓孩子安全上學")
    page.fill("#body_zh", "學校附近的車速太快。\n\n我們要求限速每小時 20 英里。")
    page.fill("#eligibility_zh", "家長及學生。")
    page.uncheck("#require_email")
    person.submit("form[action='/organiser/new'] button[type=submit]")
    person.audit("draft")

    person.submit(f"form[action='/organiser/p/{slug}/open'] button[type=submit]")
    person.audit("open")
    page.fill("#name", "Paper Signer")
    page.fill("#postcode", "S1 2HE")
    person.submit(f"form[action='/organiser/p/{slug}/paper'] button[type=submit]")
    assert page.inner_text("dd.received") == "1"
    person.audit("paper-result")
    person.follow(f"main a[href='/organiser/p/{slug}']")
    person.follow(f"a[href='/organiser/p/{slug}/edit']")
    person.audit("edit")
    person.goto(f"/organiser/p/{slug}/names")
    person.audit("names")

    person.goto(f"/p/{slug}")
    expected_title = "讓孩子安全上學" if language != "en" else "Safe routes to school"
    assert page.inner_text("h1") == expected_title
    person.audit("public-petition")

    person.goto(f"/organiser/p/{slug}")
    person.submit(f"form[action='/organiser/p/{slug}/close'] button[type=submit]")
    assert says["closed"] in page.inner_text("main")
    person.audit("closed")
    person.follow(f"a[href='/p/{slug}/certificate']")
    person.audit("certificate")
    person.goto("/organiser/")
    person.submit("form[action='/organiser/logout'] button[type=submit]")
    assert page.url.endswith("/organiser/login")
    person.assert_clean()


@pytest.mark.parametrize("language", LANGUAGES)
def test_organiser_turns_two_factor_sign_in_on_and_off(visitor, language):
    """Every two-factor page: off, enrol (a code made from the key shown), recovery codes, on, off again."""
    pyotp = pytest.importorskip("pyotp")
    person = visitor(language, "two-factor")
    page = person.page
    person.goto("/organiser/login")
    page.fill("#email", TWO_FACTOR_EMAILS[language])
    page.fill("#password", ORGANISER_PASSWORD)
    person.submit("form[action='/organiser/login'] button[type=submit]")
    person.goto("/organiser/two-factor")
    person.audit("off")
    person.follow("a[href='/organiser/two-factor/enrol']")
    person.audit("enrol")
    secret = page.inner_text(".receipt code").replace(" ", "")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.fill("#password", ORGANISER_PASSWORD)
    person.submit("form[action='/organiser/two-factor/enrol'] button[type=submit]")
    codes = page.locator(".recovery-codes code").all_inner_texts()
    assert len(codes) == 10
    person.audit("recovery-codes", one_time=True)
    person.goto("/organiser/two-factor")
    person.audit("on")
    person.submit("form[action='/organiser/two-factor/disable'] button[type=submit]")
    person.audit("off-errors")
    page.fill("#password", ORGANISER_PASSWORD)
    page.fill("#code", codes[0])
    person.submit("form[action='/organiser/two-factor/disable'] button[type=submit]")
    assert page.locator("a[href='/organiser/two-factor/enrol']").count() == 1
    person.assert_clean()


def test_language_link_leaves_the_petition_page_cookie_free(visitor, server):
    person = visitor("en", "switch")
    page = person.page
    responses = []
    page.on("response", lambda response: responses.append(response))
    person.goto("/p/plain")
    person.follow("nav.language a[hreflang='zh-Hant']")
    assert page.url == server.base + "/p/plain"
    assert page.get_attribute("html", "lang") == "zh-Hant"
    assert SAYS["zh-Hant"]["petition"] in person.text()
    switch, *_ = (r for r in responses if "/lang/" in r.url)
    assert switch.status == 303 and "lang=zh_Hant" in (switch.header_value("set-cookie") or "")
    petition_pages = [r for r in responses if r.url == server.base + "/p/plain"]
    assert len(petition_pages) == 2
    for response in petition_pages:
        headers = response.headers
        assert response.header_value("set-cookie") is None
        assert headers["cache-control"].startswith("public")
        assert {"accept-language", "cookie"} <= {v.strip().lower() for v in headers["vary"].split(",")}
    person.follow("nav.language a[hreflang='en']")
    assert page.get_attribute("html", "lang") == "en"


# --- keyboard only ----------------------------------------------------------------


def focused(page):
    """What has the focus, as a short name, and whether its focus indicator can be seen."""
    return page.evaluate(
        """() => {
            const e = document.activeElement;
            const s = getComputedStyle(e);
            const name = e.id ? '#' + e.id : e.tagName.toLowerCase() + (e.className ? '.' + e.className : '')
                + (e.getAttribute('href') ? '[' + e.getAttribute('href').split('?')[0] + ']' : '');
            const visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) || s.boxShadow !== 'none';
            return [name, visible];
        }"""
    )


def tab_to(page, target, limit=25):
    """Press Tab until ``target`` has the focus; every stop on the way must show its focus."""
    stops = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        name, visible = focused(page)
        assert visible, f"no visible focus indicator on {name}"
        stops.append(name)
        if name == target:
            return stops
    raise AssertionError(f"never reached {target} with Tab; went through {stops}")


def test_keyboard_only_signing(browser, server):
    """Tab, Space and Enter (and typing) only: no mouse, no JavaScript."""
    context = browser.new_context(java_script_enabled=False, locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(server.base + "/p/plain")
        page.keyboard.press("Tab")
        assert focused(page) == ["a.skip[#main]", True]
        assert page.locator("a.skip").is_visible() and page.locator("a.skip").bounding_box()["y"] >= 0
        page.keyboard.press("Enter")
        assert focused(page)[0] == "#main"

        assert tab_to(page, "a.button[/p/plain/sign]") == ["a.button[/p/plain/sign]"]
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert page.url.endswith("/p/plain/sign")

        # The order of the stops is the order on the screen.
        stops = tab_to(page, "#name")
        assert stops == ["a.skip[#main]", "a.brand[/]", "a[/lang/zh-Hant]", "#name"], stops
        page.keyboard.type("Keyboard Only")
        assert tab_to(page, "#postcode") == ["#postcode"]
        page.keyboard.type("S1 2HE")
        assert tab_to(page, "#display_name") == ["#display_name"]
        assert tab_to(page, "#eligible") == ["#eligible"]
        page.keyboard.press("Space")
        assert page.is_checked("#eligible")
        assert tab_to(page, "button") == ["button"]
        with page.expect_navigation():
            page.keyboard.press("Enter")
        assert "Thank you for signing" in page.inner_text("h1")
        assert RECEIPT_RE.fullmatch(page.inner_text(".receipt code"))
    finally:
        context.close()


def test_keyboard_user_reaches_errors_from_the_summary(browser, server):
    """A form sent with mistakes: each summary link takes the focus to its field."""
    context = browser.new_context(java_script_enabled=False, locale="zh-HK")
    page = context.new_page()
    try:
        page.goto(server.base + "/p/plain/sign")
        tab_to(page, "button")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        tab_to(page, "a[#name]")
        page.keyboard.press("Enter")
        assert focused(page)[0] == "#name"
        assert "請輸入您的姓名。" in page.inner_text("#name-error")
    finally:
        context.close()
