"""Language: English and Traditional Chinese, from a cookie or Accept-Language."""

from flask import has_request_context, request
from flask_babel import Babel, get_locale

LANGUAGES = ("en", "zh_Hant")
LANGUAGE_COOKIE = "lang"


def select_locale():
    if not has_request_context():
        return "en"  # the CLI, and mail sent outside a request
    chosen = request.cookies.get(LANGUAGE_COOKIE)
    if chosen in LANGUAGES:
        return chosen
    return (
        request.accept_languages.best_match(["en", "zh-Hant", "zh-TW", "zh-HK"], default="en")
        .replace("zh-TW", "zh_Hant")
        .replace("zh-HK", "zh_Hant")
        .replace("zh-Hant", "zh_Hant")
    )


def init_app(app):
    Babel(app, locale_selector=select_locale, default_translation_directories="translations")

    @app.context_processor
    def _language():
        locale = str(get_locale())
        return {"html_lang": "zh-Hant" if locale == "zh_Hant" else "en"}
