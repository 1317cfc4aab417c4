"""Signer-facing pages: petitions, sign, confirm, receipt, withdraw (DESIGN §8, §9).

Thin: parse the form, call one ledger function, render. The receipt code is a
secret, so it travels only in POST bodies, never in a URL. The confirmation
token does travel in a URL (the mailed link), so it works once, expires, is
stored only as a hash, and is never logged.
"""

import json

from flask import Blueprint, abort, current_app, make_response, redirect, render_template, request, url_for
from flask_babel import lazy_gettext as _l

from crypto.errors import InvalidIdentity, InvalidReceipt
from crypto.normalise import canonical_email, canonical_name

from .. import ledger
from ..ledger import witnessing
from . import flash_cookie, pagecache
from .errors import DOMAIN_ERRORS, render_error
from .forms import ConfirmForm, ForgetReceiptForm, ReceiptForm, SignForm, WithdrawForm, check_typed_fields
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
@pagecache.cached(params=("before",))
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
        witnessed=witnessing.summary(services(), petition),
    )
    # No form and no cookie here, so a read storm can be served from caches.
    return cacheable(make_response(page), 10, 60)


@bp.route("/p/<slug>/sign", methods=["GET", "POST"])
def sign(slug):
    petition = petition_or_404(slug)
    if not petition.accepts_signatures:
        # Reached from a petition page cached before it closed: say so kindly.
        page = render_template("public/sign_closed.html", petition=petition)
        return no_store(page, 409)
    form = SignForm()
    if _every_field_checked(form, petition):
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
            form.postcode.errors.append(_not_eligible_message(error))
        except ledger.InvalidDisplayName:
            form.display_name.errors.append(_l("Please use printable characters only."))
        except ledger.InvalidContact:
            form.contact_email.errors.append(IDENTITY_MESSAGES["email"])
        else:
            if receipt is None:
                # The same page whether the address was new, pending or counted.
                return no_store(render_template("public/check_mailbox.html", petition=petition))
            return _show_receipt_after_redirect(petition, receipt, "signed")
    status = 400 if request.method == "POST" else 200
    return no_store(render_template("public/sign.html", petition=petition, form=form), status)


@bp.route("/p/<slug>/confirm/<token>", methods=["GET", "POST"])
def confirm(slug, token):
    """GET shows a button and changes nothing (mail scanners follow links); POST confirms."""
    petition = petition_or_404(slug)
    form = ConfirmForm()
    if form.validate_on_submit():
        receipt = ledger.confirm_signature(services(), petition, token)
        return _show_receipt_after_redirect(petition, receipt, "confirmed")
    signature = ledger.pending_signature(services(), petition, token)
    page = render_template("public/confirm.html", petition=petition, form=form, signature=signature, token=token)
    return no_store(page)


def _show_receipt_after_redirect(petition, receipt, kind):
    """Post/Redirect/Get: a reload or Back shows the same code again, never resubmits the form."""
    flash_cookie.keep(services(), petition, receipt, kind)
    return redirect(url_for("public.signed", slug=petition.slug), 303)


@bp.route("/p/<slug>/signed", methods=["GET", "POST"])
def signed(slug):
    """The receipt code kept for this browser (GET), or forget it on this device (POST)."""
    petition = petition_or_404(slug)
    form = ForgetReceiptForm()
    if form.validate_on_submit():
        flash_cookie.forget()
        return redirect(url_for("public.petition", slug=petition.slug), 303)
    kept = flash_cookie.shown(services(), petition)
    if kept is None:
        return no_store(render_template("public/receipt_gone.html", petition=petition), 410)
    receipt, kind = kept
    template = "public/confirmed.html" if kind == "confirmed" else "public/signed.html"
    minutes = ledger.RECEIPT_FLASH_SECONDS // 60
    return no_store(render_template(template, petition=petition, receipt=receipt, form=form, minutes=minutes))


def _every_field_checked(form, petition):
    """True if the form was sent and every field is right; else every field's error at once.

    The ledger decides again when signing; these checks only let the signer
    fix everything in one round instead of one field per round.
    """
    if request.method != "POST":
        return False
    ok = form.validate_on_submit()
    if petition.require_postcode:
        ok &= form.require(form.postcode, _l("Please enter your postcode."))
    if petition.require_email:
        ok &= form.require(form.email, _l("Please enter your email address."))
    checks = [(form.name, canonical_name)]
    if petition.require_postcode:
        checks.append((form.postcode, lambda text: ledger.eligible_postcode(petition, text)))
    if petition.require_email:
        checks.append((form.email, lambda text: canonical_email(text, services().dotless_domains)))
    if petition.contact_public_key and form.keep_informed.data:
        checks.append((form.contact_email, lambda text: canonical_email(text, services().dotless_domains)))
    return check_typed_fields(checks, IDENTITY_MESSAGES, _not_eligible_message) and ok


def _not_eligible_message(error):
    return _l("This petition is for postcodes in these areas only: %(areas)s.", areas=str(error))


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
        return no_store(_status_page(petition, status, WithdrawForm(formdata=None, receipt=form.receipt.data)))
    status = 400 if request.method == "POST" else 200
    return no_store(render_template("public/receipt.html", petition=petition, form=form), status)


def _status_page(petition, status, withdraw_form):
    return render_template(
        "public/receipt_status.html",
        petition=petition,
        status=status,
        withdraw_form=withdraw_form,
        proof_form=ReceiptForm(formdata=None, receipt=withdraw_form.receipt.data),
        minutes=current_app.config["PUBLISH_INTERVAL_SECONDS"] // 60,
    )


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
        # Only the box was left empty: the same page again, the error by the box.
        status, failure = _lookup(petition, ReceiptForm(formdata=None, receipt=form.receipt.data))
        if failure:
            return failure
        return no_store(_status_page(petition, status, form), 400)
    try:
        ledger.withdraw(services(), petition, form.receipt.data)
    except InvalidReceipt:
        return render_error(400, BAD_RECEIPT_MESSAGE)
    return no_store(render_template("public/withdrawn.html", petition=petition))
