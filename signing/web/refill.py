"""A form page again, filled with what was posted: after switching language, or after a refused cookie.

On a page with a form, the language switch is a button of that form
(``formaction`` = ``POST /lang/<tag>?next=<the page>``), so what was typed
comes along. This endpoint shows the same page in the chosen language, filled
in, and sets the language cookie; it never submits the form's own action
(no signature, no lookup that the page's own button would not show). The
CSRF check runs first, as on every POST. What was typed only goes back into
the page: it is not stored, logged or put in a URL, and the page is no-store.

Tick boxes are never echoed: a declaration ("I am eligible", "keep me
informed", "withdraw") is made again on the page as now shown.

``refilled(endpoint, view_args)`` renders such a page for the CSRF handler too
(signing/web/errors.py), with the cookie explanation above the form.
"""

from flask import Blueprint, abort, current_app, g, redirect, render_template, request, url_for
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException

from .forms import ReceiptForm, SignForm
from .i18n import LANGUAGE_BY_TAG, remember_language, safe_next, use_language
from .lookup import no_store, petition_or_404

bp = Blueprint("refill", __name__)

# A form page's endpoint → function(**view_args, notice=...) → (body, status).
PAGES = {}
TICK_BOXES = frozenset({"eligible", "keep_informed", "confirm"})


def form_page(*endpoints):
    """Register the function that shows these endpoints' form filled with the posted values."""

    def register(function):
        for endpoint in endpoints:
            PAGES[endpoint] = function
        return function

    return register


def typed():
    """The posted fields but tick boxes and the old CSRF token (the form renders a fresh one)."""
    return MultiDict(
        (name, value)
        for name, value in request.form.items(multi=True)
        if name not in TICK_BOXES and name != "csrf_token"
    )


def target(path):
    """(endpoint, view_args) of a path on this site, or None."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    for method in ("POST", "GET"):
        try:
            return adapter.match(path.split("?", 1)[0], method=method)
        except HTTPException:
            continue
    return None


def refilled(endpoint, view_args, notice=None):
    """The form page at ``endpoint`` filled with what was posted, as (body, status) or a response;
    None if it has no such page. ``notice`` (title, message, why) is shown above the form."""
    show = PAGES.get(endpoint)
    if show is None:
        return None
    return show(**view_args, notice=notice)


@bp.post("/lang/<tag>")
def switch(tag):
    language = LANGUAGE_BY_TAG.get(tag)
    if language is None:
        abort(404)
    back = safe_next(request.args.get("next"))
    found = target(back) if back else None
    use_language(language)
    g.here = back  # the page's own address, for its language switch and links
    shown = refilled(*found) if found else None
    if shown is None:
        response = redirect(back or url_for("public.index"), code=303)
    elif isinstance(shown, tuple):
        response = no_store(*shown)
    else:
        response = shown
    return remember_language(response, language)


@form_page("public.sign")
def sign(slug, notice):
    petition = petition_or_404(slug)
    if not petition.accepts_signatures:
        return render_template("public/sign_closed.html", petition=petition), 409
    form = SignForm(formdata=typed())
    return render_template("public/sign.html", petition=petition, form=form, notice=notice), 200


@form_page("public.receipt")
def receipt(slug, notice):
    petition = petition_or_404(slug)
    form = ReceiptForm(formdata=typed())
    return render_template("public/receipt.html", petition=petition, form=form, notice=notice), 200


@form_page("public.withdraw")
def receipt_status(slug, notice):
    """The status page, whose forms carry the receipt code: shown again as the check button shows it."""
    if notice:
        return None  # after a refused cookie, the refusal page says what to do
    return current_app.view_functions["public.receipt"](slug=slug)
