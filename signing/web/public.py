"""Signer-facing pages: petitions, sign, confirm, receipt, withdraw (DESIGN §8, §9).

Thin: parse the form, call one ledger function, render. The receipt code is a
secret, so it travels only in POST bodies, never in a URL. The confirmation
token does travel in a URL (the mailed link), so it works once, expires, is
stored only as a hash, and is never logged.
"""

import json

from flask import Blueprint, abort, current_app, make_response, render_template, request
from flask_babel import lazy_gettext as _l

from crypto.errors import InvalidIdentity, InvalidReceipt

from .. import ledger
from . import pagecache
from .errors import DOMAIN_ERRORS, render_error
from .forms import ConfirmForm, ReceiptForm, SignForm, WithdrawForm
from .lookup import cacheable, no_store, petition_or_404, services

bp = Blueprint("public", __name__)

IDENTITY_MESSAGES = {
    "name": _l("Please enter your name using letters."),
    "email": _l("Please enter a valid email address, like name@example.org."),
    "postcode": _l("Please enter a valid UK postcode, like SW1A 1AA."),
}
UNKNOWN_RECEIPT_MESSAGE = DOMAIN_ERRORS[ledger.UnknownReceipt][2]
BAD_RECEIPT_MESSAGE = _l("A receipt code has 26 letters and digits, like ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ.")


@bp.get("/")
@pagecache.cached
def index():
    ledger.apply_all_schedules(services())
    petitions = [(p, ledger.current_count(p)) for p in ledger.listed_petitions()]
    return cacheable(make_response(render_template("public/index.html", petitions=petitions)), 10, 60)


@bp.get("/p/<slug>")
@pagecache.cached
def petition(slug):
    petition = petition_or_404(slug)
    before = request.args.get("before")
    if before is not None and not (before.isdigit() and 0 < len(before) < 19):
        abort(400)
    limit = current_app.config["DISPLAY_NAMES_PER_PAGE"]
    names = ledger.display_names(petition, int(before) if before else None, limit)
    page = render_template(
        "public/petition.html",
        petition=petition,
        count=ledger.current_count(petition),
        names=names,
        next_before=names[-1].leaf_index if len(names) == limit else None,
    )
    # No form and no cookie here, so a read storm can be served from caches.
    return cacheable(make_response(page), 10, 60)


@bp.route("/p/<slug>/sign", methods=["GET", "POST"])
def sign(slug):
    petition = petition_or_404(slug)
    ledger.require_open(petition)
    form = SignForm()
    if form.validate_on_submit() and _policy_fields_present(form, petition):
        try:
            receipt = ledger.sign_online(
                services(),
                petition,
                name=form.name.data,
                postcode=form.postcode.data,
                email=form.email.data,
                display_name=form.display_name.data,
                contact=form.contact(),
            )
        except InvalidIdentity as error:
            getattr(form, error.field).errors.append(IDENTITY_MESSAGES[error.field])
        except ledger.PostcodeNotEligible as error:
            form.postcode.errors.append(
                _l("This petition is for postcodes in these areas only: %(areas)s.", areas=str(error))
            )
        except ledger.InvalidDisplayName:
            form.display_name.errors.append(_l("Please use printable characters only."))
        except ledger.InvalidContact:
            form.contact_email.errors.append(IDENTITY_MESSAGES["email"])
        else:
            if receipt is None:
                # The same page whether the address was new, pending or counted.
                return no_store(render_template("public/check_mailbox.html", petition=petition))
            return no_store(render_template("public/signed.html", petition=petition, receipt=receipt))
    status = 400 if request.method == "POST" else 200
    return no_store(render_template("public/sign.html", petition=petition, form=form), status)


@bp.route("/p/<slug>/confirm/<token>", methods=["GET", "POST"])
def confirm(slug, token):
    """GET shows a button and changes nothing (mail scanners follow links); POST confirms."""
    petition = petition_or_404(slug)
    form = ConfirmForm()
    if form.validate_on_submit():
        receipt = ledger.confirm_signature(services(), petition, token)
        return no_store(render_template("public/confirmed.html", petition=petition, receipt=receipt))
    signature = ledger.pending_signature(services(), petition, token)
    page = render_template("public/confirm.html", petition=petition, form=form, signature=signature, token=token)
    return no_store(page)


def _policy_fields_present(form, petition):
    ok = True
    if petition.require_postcode:
        ok &= form.require(form.postcode, _l("Please enter your postcode."))
    if petition.require_email:
        ok &= form.require(form.email, _l("Please enter your email address."))
    return ok


def _lookup(petition, form):
    """The receipt's status, or an error response with the form re-rendered."""
    try:
        return ledger.receipt_status(services(), petition, form.receipt.data), None
    except InvalidReceipt:
        form.receipt.errors.append(BAD_RECEIPT_MESSAGE)
        status = 400
    except ledger.UnknownReceipt:
        form.receipt.errors.append(UNKNOWN_RECEIPT_MESSAGE)
        status = 404
    return None, no_store(render_template("public/receipt.html", petition=petition, form=form), status)


@bp.route("/p/<slug>/receipt", methods=["GET", "POST"])
def receipt(slug):
    petition = petition_or_404(slug)
    form = ReceiptForm()
    if form.validate_on_submit():
        status, failure = _lookup(petition, form)
        if failure:
            return failure
        withdraw_form = WithdrawForm(formdata=None, receipt=form.receipt.data)
        return no_store(
            render_template(
                "public/receipt_status.html",
                petition=petition,
                status=status,
                withdraw_form=withdraw_form,
                proof_form=ReceiptForm(formdata=None, receipt=form.receipt.data),
            )
        )
    status = 400 if request.method == "POST" else 200
    return no_store(render_template("public/receipt.html", petition=petition, form=form), status)


@bp.post("/p/<slug>/receipt/proof")
def receipt_proof(slug):
    petition = petition_or_404(slug)
    form = ReceiptForm()
    if not form.validate_on_submit():
        return no_store(render_template("public/receipt.html", petition=petition, form=form), 400)
    status, failure = _lookup(petition, form)
    if failure:
        return failure
    if status.state != "counted":
        return render_error(409, _l("This signature is not in the public log, so there is no proof to download."))
    document = ledger.receipt_proof_document(services(), petition, status)
    response = no_store(json.dumps(document, indent=1, sort_keys=True))
    response.mimetype = "application/json"
    response.headers["Content-Disposition"] = f'attachment; filename="{petition.slug}-receipt-proof.json"'
    return response


@bp.post("/p/<slug>/withdraw")
def withdraw(slug):
    petition = petition_or_404(slug)
    form = WithdrawForm()
    if not form.validate_on_submit():
        if form.receipt.errors:
            return render_error(400, BAD_RECEIPT_MESSAGE)
        return render_error(400, _l("Please tick the box to confirm the withdrawal, then submit again."))
    try:
        ledger.withdraw(services(), petition, form.receipt.data)
    except InvalidReceipt:
        return render_error(400, BAD_RECEIPT_MESSAGE)
    return no_store(render_template("public/withdrawn.html", petition=petition))
