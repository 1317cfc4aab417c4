"""Error pages: every client mistake is a calm 4xx page; nothing echoes input."""

import logging

from flask import render_template, request
from flask_babel import lazy_gettext as _l
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from .. import ledger
from ..ledger.throttle import BUSY_RETRY_AFTER_SECONDS

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
        return render_error(
            400,
            _l(
                "This form has expired or was not sent from this site, so nothing was done. "
                "Please go back, reload the page and submit it again."
            ),
            _l("Form expired"),
        )

    @app.errorhandler(ledger.LedgerError)
    def _refused(error):
        status, title, message = DOMAIN_ERRORS.get(type(error), (409, None, None))
        if wants_json():
            return {"error": str(MESSAGES[status][1])}, status
        body, status = render_error(status, message, title)
        headers = {"Retry-After": str(BUSY_RETRY_AFTER_SECONDS)} if type(error) in RETRY_LATER else {}
        return body, status, headers

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
