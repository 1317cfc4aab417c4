"""Language: English and Traditional Chinese, from a cookie or Accept-Language (DESIGN §9).

Each request's language is the ``lang`` cookie if it names one we have, else
the best match of Accept-Language, else English. A plain link on every page,
``GET /lang/<tag>?next=<path>``, sets that cookie and sends the reader back to
the page they were on: no JavaScript, no form. That link's own response is
(with ``POST /lang/<tag>``, the switch on a page with a form that keeps what was
typed: signing/web/refill.py) the only one that sets the cookie, so the public petition page stays
cookie-free and cacheable; every HTML response says ``Vary: Accept-Language,
Cookie`` so a shared cache keeps one copy per language.

Dates and numbers are formatted with Babel in British English or Hong Kong
Traditional Chinese conventions. A petition's title, text and eligibility may
be given in Traditional Chinese too; ``localised`` picks the reader's.
"""

import re
from datetime import timedelta
from urllib.parse import quote, urlsplit

from babel.dates import format_date as babel_format_date
from babel.dates import format_time as babel_format_time
from babel.numbers import format_decimal
from flask import Blueprint, abort, current_app, g, has_request_context, redirect, request, url_for
from flask_babel import Babel, get_locale, refresh
from markupsafe import Markup

LANGUAGES = ("en", "zh_Hant")
LANGUAGE_COOKIE = "lang"
LANGUAGE_COOKIE_MAX_AGE = timedelta(days=365)
# BCP 47 tags, for URLs and the html lang attribute; names in their own language.
TAGS = {"en": "en", "zh_Hant": "zh-Hant"}
LANGUAGE_BY_TAG = {"en": "en", "zh-Hant": "zh_Hant", "zh_Hant": "zh_Hant"}
ENDONYMS = {"en": "English", "zh_Hant": "繁體中文"}
# Babel locales for dates and numbers: the UK's and Hong Kong's conventions.
FORMAT_LOCALES = {"en": "en_GB", "zh_Hant": "zh_Hant_HK"}
# Accept-Language primary subtags we answer. Any Chinese (Cantonese too),
# Simplified included, gets Traditional Chinese: closer than English for most
# readers of Chinese.
ACCEPTED_PRIMARY = {"en": "en", "zh": "zh_Hant", "yue": "zh_Hant"}

# Where the language link may send the reader back to: a path on this site
# (one leading slash, then no slash or backslash), with an optional query, in
# plain URL characters only. Anything else goes to the list of petitions.
SAFE_NEXT_RE = re.compile(r"/(?![/\\])[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*(?:\?[A-Za-z0-9\-._~!$&'()*+,;=:@/?%]*)?")
NEXT_MAX_CHARS = 2048

bp = Blueprint("i18n", __name__)


def select_locale():
    if not has_request_context():
        return "en"  # the CLI, and mail sent outside a request
    if g.get("switched_language") in LANGUAGES:
        return g.switched_language  # the reader just switched, on a form page (signing/web/refill.py)
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    # Highest quality first; the first tag in a language we have wins.
    for tag, quality in request.accept_languages:
        language = ACCEPTED_PRIMARY.get(tag.lower().replace("_", "-").split("-")[0])
        if language is not None and quality > 0:
            return language
    return "en"


def current_language():
    locale = get_locale()
    return "zh_Hant" if locale is not None and str(locale) == "zh_Hant" else "en"


def safe_next(target):
    """``target`` if it is a path on this site, else None (never another host)."""
    if not target or len(target) > NEXT_MAX_CHARS or not SAFE_NEXT_RE.fullmatch(target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


@bp.get("/lang/<tag>")
def switch(tag):
    """Remember the language in a cookie and go back; the only response that sets it."""
    language = LANGUAGE_BY_TAG.get(tag)
    if language is None:
        abort(404)
    response = redirect(safe_next(request.args.get("next")) or url_for("public.index"), code=303)
    return remember_language(response, language)


def use_language(language):
    """Render the rest of this request in ``language``, as if its cookie had come with it."""
    g.switched_language = language
    refresh()


def remember_language(response, language):
    """Set the language cookie on ``response``; never cached."""
    response.set_cookie(
        LANGUAGE_COOKIE,
        language,
        max_age=LANGUAGE_COOKIE_MAX_AGE,
        path="/",
        secure=not current_app.config["DEVELOPMENT"],
        httponly=True,
        samesite="Lax",
    )
    response.headers["Cache-Control"] = "no-store"
    return response


def here():
    """This page's path and query, to come back to after switching language."""
    if g.get("here"):
        return g.here  # a form page shown again by the language switch (signing/web/refill.py)
    path = quote(request.path, safe="/:@!$&'()*+,;=-._~")
    query = request.query_string.decode("ascii", "replace")
    if query and request.method == "GET":
        return safe_next(f"{path}?{query}") or safe_next(path) or "/"
    return safe_next(path) or "/"


def language_links():
    """(href, tag, name) for every language but the current one."""
    if not has_request_context():
        return []
    current = current_language()
    return [
        (url_for("i18n.switch", tag=TAGS[language], next=here()), TAGS[language], ENDONYMS[language])
        for language in LANGUAGES
        if language != current
    ]


def language_actions(page=None):
    """(formaction, tag, name) for every language but the current one: buttons of this page's form
    that show it (or ``page``, a path) again in that language with what was typed kept (signing/web/refill.py)."""
    current = current_language()
    return [
        (url_for("refill.switch", tag=TAGS[language], next=page or here()), TAGS[language], ENDONYMS[language])
        for language in LANGUAGES
        if language != current
    ]


def localised(petition, field):
    """The petition's ``field`` (title, body, eligibility) in the reader's language, if given."""
    if current_language() == "zh_Hant":
        translated = getattr(petition, f"{field}_zh", "") or ""
        if translated.strip():
            return translated
    return getattr(petition, field) or ""


def text_lang(petition, field):
    """` lang="en"` where a zh-Hant page shows the English text for want of a translation."""
    if current_language() == "zh_Hant" and localised(petition, field) == (getattr(petition, field) or ""):
        return Markup(' lang="en"')
    return Markup("")


def localised_html(petition, field):
    """``localised``, for use inside a sentence: in a ``lang="en"`` span where a zh-Hant page shows English."""
    text = localised(petition, field)
    if text_lang(petition, field):
        return Markup('<span lang="en">{}</span>').format(text)
    return text


def format_day(day):
    """A date as people write it: "1 June 2026", "2026年6月1日"."""
    if day is None:
        return ""
    return babel_format_date(day, format="long", locale=FORMAT_LOCALES[current_language()])


def format_moment(moment):
    """A UTC time to the minute as people read it: "1 June 2026, 18:47 UTC"."""
    if moment is None:
        return ""
    locale = FORMAT_LOCALES[current_language()]
    day = babel_format_date(moment, format="long", locale=locale)
    return f"{day} {babel_format_time(moment, 'HH:mm', locale=locale)} UTC"


def format_count(number):
    """A whole number with the locale's grouping: "12,345"."""
    return format_decimal(number or 0, locale=FORMAT_LOCALES[current_language()])


def init_app(app):
    Babel(app, locale_selector=select_locale, default_translation_directories="translations")
    # WTForms' bundled catalogues would give zh_Hant readers its Simplified
    # Chinese ("zh") messages; every validator carries a message of ours instead.
    app.config["WTF_I18N_ENABLED"] = False
    app.register_blueprint(bp)
    app.add_template_filter(format_day, "day")
    app.add_template_filter(format_count, "number")
    app.add_template_filter(format_moment, "moment")
    app.add_template_global(localised)
    app.add_template_global(localised_html)
    app.add_template_global(text_lang)
    app.add_template_global(language_links)
    app.add_template_global(language_actions)

    @app.context_processor
    def _language():
        return {"html_lang": TAGS[current_language()]}

    @app.after_request
    def _vary_by_language(response):
        # Every page is rendered in the reader's language, chosen from these two headers.
        # A redirect's body is werkzeug's own English stub, the same for every reader:
        # it says no language, and signing does not pay to work one out.
        if response.mimetype == "text/html" and not 300 <= response.status_code < 400:
            response.vary.update(("Accept-Language", "Cookie"))
            response.headers.setdefault("Content-Language", TAGS[current_language()])
        return response
