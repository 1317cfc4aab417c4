"""Languages: complete catalogues, choosing and switching language, localised pages and mail."""

import re
from datetime import date
from pathlib import Path

import pytest
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from helpers import Signer, make_petition

from signing import db, migrations
from signing.models import Petition
from signing.web import i18n

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "signing" / "translations"
POT = TRANSLATIONS / "messages.pot"
PLACEHOLDER_RE = re.compile(r"%\(\w+\)[sd]")
ZH = {"Accept-Language": "zh-HK,zh;q=0.9,en;q=0.5"}


def catalogue(language):
    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.po", "rb") as po:
        return read_po(po)


def template_ids():
    with open(POT, "rb") as pot:
        return {message.id for message in read_po(pot) if message.id}


def ids(message_id):
    return message_id if isinstance(message_id, tuple) else (message_id,)


def strings(message):
    return message.string if isinstance(message.string, tuple) else (message.string,)


def page(response):
    return response.get_data(as_text=True)


@pytest.fixture
def client(app):
    return app.test_client()


# --- the catalogues -------------------------------------------------------------


def test_message_template_is_current(tmp_path):
    """Re-extract as babel.cfg says; a message added to code or templates must reach the .pot."""
    fresh = tmp_path / "messages.pot"
    CommandLineInterface().run(
        ["pybabel", "-q", "extract", "-F", str(ROOT / "babel.cfg"), "-k", "_l", "-k", "lazy_gettext",
         "--no-location", "--omit-header", "-o", str(fresh), str(ROOT)]
    )  # fmt: skip
    with open(fresh, "rb") as extracted:
        current = {message.id for message in read_po(extracted) if message.id}
    committed = template_ids()
    assert not current - committed, f"not in messages.pot (re-extract, see babel.cfg): {sorted(current - committed)}"
    assert not committed - current, f"stale in messages.pot (re-extract, see babel.cfg): {sorted(committed - current)}"


# Text in templates that is not for translation: commands, file names.
UNTRANSLATED_TEMPLATE_TEXT = {"signing-audit verify -bundle.jsonl"}


def test_templates_have_no_unmarked_text():
    """Words left in a template outside {{ _(...) }} would stay English on Chinese pages."""
    found = []
    for path in sorted((ROOT / "templates").rglob("*")):
        if path.suffix not in (".html", ".txt"):
            continue
        text = path.read_text(encoding="utf-8")
        for attribute in re.finditer(r'(?:aria-label|title|alt|placeholder)="([^"{]*[A-Za-z]{2,}[^"{]*)"', text):
            found.append(f"{path.relative_to(ROOT)}: {attribute.group(0)}")
        for pattern in (r"\{#.*?#\}", r"\{\{.*?\}\}", r"\{%.*?%\}", r"<[^>]+>"):
            text = re.sub(pattern, " ", text, flags=re.S)
        for line in text.splitlines():
            words = " ".join(line.split())
            if re.search(r"[A-Za-z]{2,}", words) and words not in UNTRANSLATED_TEMPLATE_TEXT:
                found.append(f"{path.relative_to(ROOT)}: {words}")
    assert not found, "\n".join(found)


@pytest.mark.parametrize("language", ["zh_Hant", "en"])
def test_every_message_is_translated(language):
    translated = catalogue(language)
    problems = []
    for message_id in sorted(template_ids(), key=str):
        message = translated.get(message_id)
        if message is None:
            problems.append(f"missing: {message_id!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {message_id!r}")
        elif not all(s.strip() for s in strings(message)):
            problems.append(f"untranslated: {message_id!r}")
        else:
            wanted = set(PLACEHOLDER_RE.findall(ids(message_id)[-1]))
            for string in strings(message):
                if set(PLACEHOLDER_RE.findall(string)) != wanted:
                    problems.append(f"placeholders differ: {message_id!r} -> {string!r}")
    extra = {m.id for m in translated if m.id} - template_ids()  # obsolete (#~) ones are not iterated
    problems += [f"not in messages.pot: {message_id!r}" for message_id in extra]
    assert not problems, "\n".join(problems)


def test_chinese_follows_hong_kong_usage():
    """密碼匙 not 金鑰, 郵政編碼/郵區 not 郵遞區號, 聯署憑證 not 收據 (a payment), no 樹頭."""
    translated = catalogue("zh_Hant")
    found = [
        (message.id, word)
        for message in translated
        if message.id
        for string in strings(message)
        for word in ("金鑰", "郵遞區", "收據", "樹頭", "IP 位址")
        if word in string
    ]
    assert not found, found
    assert translated.get("Display name").string == "顯示名稱"
    assert "目標門檻" in translated.get("Thresholds (signature counts that matter)").string


@pytest.mark.parametrize("language", ["zh_Hant", "en"])
def test_compiled_catalogue_matches_its_source(language):
    """The committed .mo (what a plain pip install ships) says what the .po says."""
    def plain(value):
        return tuple(value) if isinstance(value, list | tuple) else value

    with open(TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo", "rb") as mo:
        compiled = {plain(m.id): plain(m.string) for m in read_mo(mo) if m.id}
    source = {plain(m.id): plain(m.string) for m in catalogue(language) if m.id}
    assert compiled == source, "run: pybabel compile -d signing/translations"


def test_translations_ship_with_the_package():
    setup = (ROOT / "setup.cfg").read_text()
    assert "translations/*/LC_MESSAGES/*.mo" in setup


# --- choosing the language ------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "language"),
    [
        (None, "en"),
        ("en-GB,en;q=0.9", "en"),
        ("zh-HK,zh;q=0.9,en;q=0.8", "zh-Hant"),
        ("zh-TW", "zh-Hant"),
        ("zh-Hant-HK", "zh-Hant"),
        ("yue-HK", "zh-Hant"),
        ("en-GB,zh-HK;q=0.5", "en"),
        ("fr-FR,zh-HK;q=0.8", "zh-Hant"),
        ("fr-FR", "en"),
        ("zh;q=0", "en"),
    ],
)
def test_language_from_accept_language(client, petition, accept, language):
    response = client.get("/p/test", headers={"Accept-Language": accept} if accept else {})
    assert response.status_code == 200
    assert f'<html lang="{language}">' in page(response)
    assert response.headers["Content-Language"] == language


def test_a_redirect_claims_no_language_and_the_page_it_leads_to_does(browser, services):
    """A redirect's body is werkzeug's English stub whatever the reader asked for."""
    make_petition(services, "plain", require_email=False)
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = ZH["Accept-Language"]
    data = {"name": "Chan Tai Man", "postcode": "S1 2HE", "eligible": "y"}
    redirect = browser.submit("/p/plain/sign", data)
    assert redirect.status_code == 303
    assert "Content-Language" not in redirect.headers
    assert "Accept-Language" not in redirect.headers.get("Vary", "")
    shown = browser.client.get(redirect.headers["Location"])
    assert shown.status_code == 200
    assert shown.headers["Content-Language"] == "zh-Hant"
    assert "Accept-Language" in shown.headers["Vary"]


def test_petition_page_in_chinese_is_still_cacheable_and_cookie_free(client, petition):
    response = client.get("/p/test", headers=ZH)
    text = page(response)
    assert "聯署這份請願" in text and "我們如何保護您的私隱" in text
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"].startswith("public")
    assert {"Accept-Language", "Cookie"} <= set(response.vary)


@pytest.mark.parametrize("path", ["/", "/p/test", "/p/test/sign", "/p/test/receipt", "/organiser/login", "/p/nope"])
def test_every_page_varies_by_language_and_offers_the_other(client, petition, path):
    english = client.get(path)
    assert {"Accept-Language", "Cookie"} <= set(english.vary)
    # A link, or on a form page a button of the form (tests/app/test_refill.py).
    assert re.search(r'lang="zh-Hant"( hreflang="zh-Hant")?>繁體中文</(a|button)>', page(english))
    chinese = client.get(path, headers=ZH)
    assert re.search(r'lang="en"( hreflang="en")?>English</(a|button)>', page(chinese))


def test_switch_link_sets_the_cookie_and_returns_without_javascript(client, petition):
    text = page(client.get("/p/test?before=999"))
    link = re.search(r'<a href="(/lang/zh-Hant\?next=[^"]+)"', text).group(1).replace("&amp;", "&")
    switched = client.get(link)
    assert switched.status_code == 303
    assert switched.headers["Location"] == "/p/test?before=999"
    cookie = switched.headers["Set-Cookie"]
    assert cookie.startswith("lang=zh_Hant;")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Max-Age=31536000" in cookie
    assert "Secure" not in cookie  # development: plain http on loopback
    assert switched.headers["Cache-Control"] == "no-store"

    # Remembered: the cookie beats Accept-Language, both ways.
    again = client.get("/p/test", headers={"Accept-Language": "en-GB"})
    assert '<html lang="zh-Hant">' in page(again)
    assert "Set-Cookie" not in again.headers
    client.get("/lang/en?next=/p/test")
    assert '<html lang="en">' in page(client.get("/p/test", headers=ZH))


def test_language_cookie_is_secure_outside_development(app, client):
    app.config["DEVELOPMENT"] = False
    cookie = client.get("/lang/zh-Hant?next=/").headers["Set-Cookie"]
    assert "Secure" in cookie


def test_cookie_with_unknown_language_is_ignored(client, petition):
    client.set_cookie("lang", "xx")
    assert '<html lang="zh-Hant">' in page(client.get("/p/test", headers=ZH))


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/p/test",
        "/\\evil.example",
        "\\\\evil.example",
        "/\t/evil.example",  # browsers drop tabs and newlines: "//evil.example"
        "/\n/evil.example",
        "http:/evil.example",
        "javascript:alert(1)",
        " /p/test",
        "/p/test\r\nSet-Cookie: x=1",
        "/p/test\tx",
        "p/test",
        "",
        "/" + "a" * 3000,
        "/p/test?next=//evil.example#x",
    ],
)
def test_switch_refuses_to_send_anyone_elsewhere(client, target):
    response = client.get("/lang/zh-Hant", query_string={"next": target})
    assert response.status_code == 303
    location = response.headers["Location"]
    assert location == "/", location
    assert "evil" not in location


def test_switch_keeps_a_plain_path_and_query(client):
    response = client.get("/lang/en", query_string={"next": "/p/test/totals?x=1&y=%20"})
    assert response.headers["Location"] == "/p/test/totals?x=1&y=%20"


def test_unknown_language_is_not_found(client):
    response = client.get("/lang/fr?next=/")
    assert response.status_code == 404
    assert "Set-Cookie" not in response.headers


def test_pages_showing_a_one_time_secret_offer_no_link_away(browser, services):
    """A receipt is shown once: a language link there would lose it."""
    make_petition(services, "plain", require_email=False)
    signed = browser.sign("plain", Signer(email=None))
    assert signed.status_code == 200
    assert "/lang/" not in page(signed)


# --- localised pages ------------------------------------------------------------


def test_petition_text_in_both_languages(client, services):
    make_petition(
        services,
        "both",
        title="Count us",
        title_zh="請計算我們",
        body="First.\n\nSecond.",
        body_zh="第一段。\n\n第二段。",
        eligibility="Residents.",
        eligibility_zh="居民。",
    )
    chinese = page(client.get("/p/both", headers=ZH))
    assert "<h1>請計算我們</h1>" in chinese
    assert "<p>第一段。</p><p>第二段。</p>" in chinese and "<p>居民。</p>" in chinese
    assert "Count us" not in chinese
    english = page(client.get("/p/both"))
    assert "<h1>Count us</h1>" in english and "請計算我們" not in english
    assert "請計算我們" in page(client.get("/", headers=ZH))
    assert "聯署：請計算我們" in page(client.get("/p/both/sign", headers=ZH))


def test_untranslated_petition_text_is_marked_english_on_chinese_pages(client, petition):
    chinese = page(client.get("/p/test", headers=ZH))
    assert '<h1 lang="en">Petition test</h1>' in chinese
    assert '<div class="body" lang="en">' in chinese
    assert '<h1 lang="en">' not in page(client.get("/p/test"))


def test_dates_and_numbers_follow_the_language(client, services):
    make_petition(services, "dated", opens_on=date(2026, 6, 1), closes_on=date(2026, 12, 31))
    assert "1 June 2026" in page(client.get("/p/dated"))
    chinese = page(client.get("/p/dated", headers=ZH))
    assert "2026年6月1日" in chinese and "2026年12月31日" in chinese
    with client.application.test_request_context(headers=ZH):
        assert i18n.format_count(1234567) == "1,234,567"


def test_form_errors_in_chinese(browser, petition):
    response = browser.client.post(
        "/p/test/sign", data={"csrf_token": browser.csrf("/p/test/sign"), "name": ""}, headers=ZH
    )
    assert response.status_code == 400
    text = page(response)
    assert "請輸入您的姓名。" in text and "出現問題" in text
    assert "<title>錯誤： 聯署：Petition test" in text  # a screen reader hears the failure first
    assert 'href="#name">全名：請輸入您的姓名。</a>' in text  # the summary names each field


def test_error_pages_in_chinese(client):
    response = client.get("/p/no-such-petition", headers=ZH)
    assert response.status_code == 404
    assert "找不到頁面" in page(response)


# --- mail -----------------------------------------------------------------------


def test_mail_goes_out_in_the_signers_language(browser, services, mailbox):
    make_petition(services, "mailed", title="Count us", title_zh="請計算我們")
    browser.client.set_cookie("lang", "zh_Hant")
    assert browser.sign("mailed", Signer(email="chan.tai.man@example.org")).status_code == 200
    message = mailbox.last()
    assert message.subject == "關於您的要求"  # names no petition
    assert message.message["Content-Language"] == "zh-Hant"
    assert "有人（很可能是您）以這個電郵地址要求聯署「請計算我們」請願。" in message.body
    assert "連結在 7 日內有效，而且只可使用一次。" in message.body
    assert message.link

    browser.client.set_cookie("lang", "en")
    assert browser.sign("mailed", Signer(email="clara@example.org")).status_code == 200
    message = mailbox.last()
    assert message.subject == "About your request"
    assert message.message["Content-Language"] == "en"

    # Signing again in Chinese: the "already signed" mail is in Chinese too.
    browser.sign_and_confirm("mailed", Signer(name="Chan Tai Man", email="tai.man@example.org"))
    browser.client.set_cookie("lang", "zh_Hant")
    assert browser.sign("mailed", Signer(name="Chan Tai Man", email="tai.man@example.org")).status_code == 200
    assert mailbox.last().subject == "關於您的要求"
    assert "這個地址已經用來聯署過這份請願" in mailbox.last().body


# --- organisers -----------------------------------------------------------------


def test_organiser_gives_the_text_in_traditional_chinese(signed_in, services):
    form = {
        "slug": "bilingual",
        "title": "Count us",
        "body": "Please.",
        "title_zh": "請計算我們",
        "body_zh": "拜託。",
        "eligibility_zh": "居民。",
        "require_postcode": "y",
    }
    response = signed_in.submit("/organiser/new", form)
    assert response.status_code == 302, page(response)
    with db.database.connection_context():
        petition = Petition.get(Petition.slug == "bilingual")
    assert (petition.title_zh, petition.body_zh, petition.eligibility_zh) == ("請計算我們", "拜託。", "居民。")
    edit = page(signed_in.client.get("/organiser/p/bilingual/edit"))
    assert 'lang="zh-Hant"' in edit and "請計算我們" in edit


def test_organiser_pages_in_chinese(signed_in):
    text = page(signed_in.client.get("/organiser/", headers=ZH))
    assert "您的請願" in text and "發起新請願" in text


# --- the schema step ------------------------------------------------------------


def test_schema_step_adds_the_chinese_text_columns(tmp_path):
    db.open_database(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        with db.database.connection_context():
            db.database.create_tables(migrations.ALL_MODELS)
            for column in ("title_zh", "body_zh", "eligibility_zh"):
                db.database.execute_sql(f"ALTER TABLE petition DROP COLUMN {column}")  # noqa: S608
            for column in ("totp_pending", "failed_codes", "codes_locked_until"):
                db.database.execute_sql(f"ALTER TABLE organiser DROP COLUMN {column}")  # noqa: S608
            migrations.SchemaVersion.create(version=1)
        assert migrations.migrate_to_latest() == [2, 3, 4, 5, 6, 7, 8]
        with db.database.connection_context():
            columns = {column.name: column for column in db.database.get_columns("petition")}
        assert {"title_zh", "body_zh", "eligibility_zh"} <= set(columns)
    finally:
        if not db.database.is_closed():
            db.database.close()
