"""Error pages: every client mistake is a calm 4xx page; nothing echoes input."""

import logging

from flask import g, render_template, request, url_for
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from peewee import InterfaceError, OperationalError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BuildError

from crypto.errors import InvalidKey

from .. import ledger
from ..ledger.throttle import BUSY_RETRY_AFTER_SECONDS
from . import refill
from .i18n import safe_next
from .lookup import no_store

log = logging.getLogger("countersign")

MESSAGES = {
    400: (_l("Bad request"), _l("The request could not be understood. Please go back and try again.")),
    403: (_l("Forbidden"), _l("You are not allowed to do that.")),
    404: (_l("Not found"), _l("There is nothing at this address.")),
    405: (_l("Method not allowed"), _l("This page cannot be used that way.")),
    409: (_l("Not possible now"), _l("This cannot be done in the petition's current state.")),
    413: (_l("Too large"), _l("What you sent is larger than this service accepts.")),
    415: (_l("Not a form"), _l("This page accepts only forms sent from this site's own pages.")),
    429: (_l("Too many requests"), _l("Please wait a little and try again.")),
    500: (_l("Something went wrong"), _l("Nothing you sent was kept. Please try again later.")),
    503: (_l("Busy"), _l("The service is busy. Please try again in a moment.")),
}
UNAVAILABLE = (
    _l("Temporarily unavailable"),
    _l("The service cannot store or look up signatures just now. Please try again in a few minutes."),
)


COOKIE_MESSAGE = _l(
    "Your browser did not send back the cookie this site set when it showed the form, so nothing was done. "
    "Please allow cookies for this site (in Tor Browser, the shield or padlock icon, or the privacy settings), "
    "then open the form again."
)
EXPIRED_MESSAGE = _l(
    "This form was open too long (more than two hours), or was not sent from this site, so nothing was done. "
    "Please open the form again and send it."
)
COOKIE_WHY = _l(
    "Why a cookie: it holds only a random code that proves the form was sent from this site's own page, so that "
    "another website cannot send it in your name. It holds nothing about you and ends when you close the browser."
)
# The same, above the form shown again filled in with what was posted (signing/web/refill.py).
COOKIE_MESSAGE_BELOW = _l(
    "Your browser did not send back the cookie this site set when it showed the form, so nothing was done. "
    "Please allow cookies for this site (in Tor Browser, the shield or padlock icon, or the privacy settings), "
    "then send the form below again."
)
EXPIRED_MESSAGE_BELOW = _l(
    "This form was open too long (more than two hours), or was not sent from this site, so nothing was done. "
    "Please send the form below again."
)
# Forms shown again filled in after a refused cookie: nothing on them is a secret of another page.
REFILLED_AFTER_REFUSAL = frozenset({"public.sign", "public.receipt"})
# Where each form is shown, for the link back to it (the form's own fields are never echoed).
FORM_PAGES = {
    "public.sign": "public.sign",
    "public.confirm": "public.confirm",
    "public.receipt": "public.receipt",
    "public.receipt_proof": "public.receipt",
    "public.withdraw": "public.receipt",
    "public.signed": "public.signed",
}

# One answer per domain refusal, wherever it is raised: (status, title or None, message).
DOMAIN_ERRORS = {
    ledger.PetitionNotOpen: (
        409,
        None,
        _l("This petition is not open for signatures. Signatures already counted still stand."),
    ),
    ledger.PetitionNotDraft: (409, None, _l("Only a draft can be opened.")),
    ledger.PolicyFixed: (409, None, _l("Once a petition is open only its closing date and thresholds can change.")),
    ledger.PetitionNotClosed: (409, None, _l("Only a closed petition can be shredded.")),
    ledger.ShredIncomplete: (
        503,
        _l("Shredding not finished"),
        _l(
            "The key is removed from the petition, but an older copy could not yet be proven gone from the "
            "database because a reader still holds it. Nobody can sign or check tags meanwhile. "
            "Press Shred again in a minute to finish; if it keeps failing, ask the operator to run "
            "signing shred for this petition."
        ),
    ),
    ledger.ConcurrentImport: (
        409,
        None,
        _l("Another import ran at the same time; nothing was added. Please try again."),
    ),
    ledger.MailError: (
        503,
        _l("Email not sent"),
        _l(
            "We could not send the email, so nothing was kept. "
            "Please try again in a few minutes by filling in the form again."
        ),
    ),
    ledger.TagsBusy: (503, None, None),
    ledger.MalformedToken: (
        400,
        _l("Link not valid"),
        _l("This is not a valid confirmation link. Please open the link from the email exactly as it was sent."),
    ),
    ledger.UnknownToken: (
        404,
        _l("Link already used or not valid"),
        _l(
            "This confirmation link has already been used, or has been replaced by a newer one, or is not valid. "
            "If you confirmed already, your signature counts: check it with your receipt code. "
            "Otherwise, open the newest link you were sent, or sign again."
        ),
    ),
    ledger.ExpiredToken: (
        410,
        _l("Link expired"),
        _l("This confirmation link has expired, so the signature was not counted. Please sign again for a new link."),
    ),
    ledger.UnknownReceipt: (404, None, _l("No signature on this petition has that receipt code.")),
    ledger.ReceiptCannotWithdraw: (
        409,
        None,
        _l(
            "This receipt is from a second signature by the same person, so it cannot withdraw the signature that "
            "counts. Use the receipt you were shown first."
        ),
    ),
}
# Refusals that say "try again shortly": nothing was computed or stored.
RETRY_LATER = {ledger.TagsBusy, ledger.MailError}

# The database cannot be reached or cannot write (stopped, restarting, out of
# connections, disk full, locked too long): peewee wraps psycopg2's and
# sqlite3's errors in these. Not the client's fault and not a bug: a 503 that
# says when to come back, and the pool reconnects once the database is back.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, MaxConnectionsExceeded)
DATABASE_RETRY_AFTER_SECONDS = 30


def _form_address():
    page = FORM_PAGES.get(request.endpoint)
    if page is None or not request.view_args:
        return None
    try:
        return url_for(page, **request.view_args)
    except BuildError:
        return None


def _refilled_form(title, message):
    """The refused form's page again, filled with what was posted (never a tick box), the refusal above it."""
    endpoint, view_args = request.endpoint, request.view_args or {}
    if endpoint == "refill.switch":  # the language switch of a form page: that page
        back = safe_next(request.args.get("next"))
        endpoint, view_args = (refill.target(back) if back else None) or (None, {})
        g.here = back  # that page's address, for its own language switch
    if endpoint not in REFILLED_AFTER_REFUSAL:
        return None
    notice = {"title": title, "message": message, "why": COOKIE_WHY}
    return refill.refilled(endpoint, view_args, notice=notice)


def render_error(status, message=None, title=None):
    default_title, default_message = MESSAGES.get(status, MESSAGES[400])
    body = render_template(
        "errors/error.html", status=status, title=title or default_title, message=message or default_message
    )
    return body, status


def wants_json():
    return "/audit/" in request.path


def init_app(app):
    @app.errorhandler(CSRFError)
    def _csrf(_error):
        if not request.cookies:
            # Nothing came back, so the browser keeps no cookie for this site:
            # reloading cannot help, allowing the cookie can.
            title, message = _l("This form needs a cookie"), COOKIE_MESSAGE
        else:
            title, message = _l("Form expired"), EXPIRED_MESSAGE
        shown = _refilled_form(title, COOKIE_MESSAGE_BELOW if message is COOKIE_MESSAGE else EXPIRED_MESSAGE_BELOW)
        if shown is not None:
            return no_store(shown[0], 400)
        body = render_template(
            "errors/form_refused.html", title=title, message=message, why=COOKIE_WHY, back=_form_address()
        )
        return body, 400

    @app.errorhandler(ledger.LedgerError)
    def _refused(error):
        status, title, message = DOMAIN_ERRORS.get(type(error), (409, None, None))
        if wants_json():
            return {"error": str(MESSAGES[status][1])}, status
        body, status = render_error(status, message, title)
        headers = {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)} if type(error) in RETRY_LATER else {}
        return body, status, headers

    def _unavailable(what):
        headers = {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)}
        if wants_json():
            return {"error": f"{what} unavailable"}, 503, headers
        title, message = UNAVAILABLE
        body, status = render_error(503, message, title)
        return body, status, headers

    def _database_unavailable(error):
        # The kind of failure only: a driver's message may quote the statement.
        log.error("database unavailable (%s) in %s", type(error).__name__, request.endpoint)
        return _unavailable("database")

    for kind in DATABASE_UNAVAILABLE:
        app.register_error_handler(kind, _database_unavailable)

    @app.errorhandler(InvalidKey)
    def _keys_unavailable(_error):
        # The operator's to mend, not the client's: `signing serve` refuses to start with another
        # instance's master.key, but a server started otherwise, or a host that missed a
        # `rotate-master-key`, only finds out when a petition's key does not open.
        log.error(
            "a petition key did not open in %s: is this instance's master.key in place on this host?",
            request.endpoint,
        )
        return _unavailable("petition key")

    @app.errorhandler(HTTPException)
    def _http(error):
        if wants_json():
            return {"error": error.description if error.code < 500 else "internal error"}, error.code
        return render_error(error.code)

    @app.errorhandler(Exception)
    def _unexpected(error):
        # Log the kind and place of the failure, never the request or its data.
        log.error("unhandled %s in %s", type(error).__name__, request.endpoint)
        if wants_json():
            return {"error": "internal error"}, 500
        return render_error(500)
