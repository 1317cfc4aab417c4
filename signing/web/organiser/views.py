"""Organiser pages: log in, petitions, paper signatures, moderation, shredding.

Thin like the public blueprint: parse a form, call accounts or ledger, render.
Every view below ``login`` needs a logged-in organiser who may manage the
petition in question; another organiser's petition is a 404, not a 403, so
the page does not confirm that it exists.
"""

import functools
import time

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for
from flask_babel import lazy_gettext as _l

from crypto import twofactor
from crypto.normalise import canonical_email, canonical_name

from ... import ledger
from ...ledger import accounts, witnessing
from ...paper_csv import TEMPLATE as PAPER_TEMPLATE
from ...paper_csv import PaperFileError, parse_paper_csv
from ..forms import check_typed_fields
from ..lookup import services
from ..refill import form_page, typed
from . import qrcode
from .forms import (
    ActionForm,
    LoginForm,
    PaperForm,
    PetitionForm,
    ShredForm,
    TwoFactorDisableForm,
    TwoFactorEnrolForm,
    UploadForm,
)

bp = Blueprint("organiser", __name__, url_prefix="/organiser")

LOGIN_FAILED_MESSAGE = _l(
    "That email address, password and two-factor code do not match an account, or there were too many attempts. "
    "Wait 15 minutes and try again."
)


PAPER_FIELD_MESSAGES = {
    "name": _l("Check the name: it is empty or has no letters."),
    "postcode": _l("Check the postcode: it is not a valid UK postcode."),
    "postcode_missing": _l("The postcode is missing."),
    "email": _l("Check the email address: it is not valid."),
}

SHRED_MISTYPED_MESSAGE = _l("That is not this petition's address. Type it exactly as shown. Nothing was done.")

STATUS_LABELS = {
    "draft": _l("draft"),
    "open": _l("open"),
    "closed": _l("closed"),
    "shredded": _l("closed, key shredded"),
}


@bp.app_context_processor
def _template_helpers():
    return {"status_label": STATUS_LABELS.get, "logout_form": ActionForm}


def current_organiser():
    """The logged-in organiser, or None once the session is stale or revoked."""
    organiser_id, epoch, seen = session.get("organiser_id"), session.get("epoch"), session.get("seen")
    if organiser_id is None:
        return None
    idle = current_app.config["ORGANISER_IDLE_MINUTES"] * 60
    organiser = accounts.organiser_by_id(organiser_id)
    if organiser is None or organiser.session_epoch != epoch or not isinstance(seen, int) or time.time() - seen > idle:
        session.clear()
        return None
    session["seen"] = int(time.time())
    return organiser


def login_required(view):
    @functools.wraps(view)
    def wrapped(**kwargs):
        g.organiser = current_organiser()
        if g.organiser is None:
            return redirect(url_for("organiser.login"))
        return view(**kwargs)

    return wrapped


def managed_petition(slug):
    petition = ledger.petition_by_slug(slug)
    if petition is None or not accounts.may_manage(g.organiser, petition):
        abort(404)
    return ledger.apply_schedule(services(), petition)


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        try:
            organiser = accounts.authenticate(services(), form.email.data, form.password.data, code=form.code.data)
        except accounts.LoginFailed:
            form.password.errors.append(LOGIN_FAILED_MESSAGE)
        else:
            # A fresh session at login: nothing from before survives (fixation).
            session.clear()
            session.permanent = True
            session.update(organiser_id=organiser.id, epoch=organiser.session_epoch, seen=int(time.time()))
            return redirect(url_for("organiser.dashboard"))
    status = 400 if request.method == "POST" else 200
    return render_template("organiser/login.html", form=form), status


@bp.post("/logout")
def logout():
    ActionForm().validate_on_submit()
    session.clear()
    return redirect(url_for("organiser.login"))


@bp.get("/")
@login_required
def dashboard():
    petitions = [(p, ledger.current_count(p)) for p in accounts.petitions_for(g.organiser)]
    # Witnesses that refused or could not be reached: the operator must see them.
    reports = witnessing.recent_reports() if g.organiser.is_operator else []
    return render_template("organiser/dashboard.html", petitions=petitions, action=ActionForm(), reports=reports)


@bp.route("/new", methods=["GET", "POST"])
@login_required
def new():
    form = PetitionForm()
    if form.validate_on_submit():
        try:
            petition = ledger.create_petition(
                services(), slug=form.slug.data, status=ledger.DRAFT, organiser=g.organiser.id, **form.policy()
            )
        except ledger.SlugTaken:
            form.slug.errors.append(_l("That address is taken; choose another."))
        else:
            flash(_l("Draft saved. Open it when it is ready."))
            return redirect(url_for("organiser.petition", slug=petition.slug))
    status = 400 if request.method == "POST" else 200
    return render_template("organiser/edit.html", form=form, petition=None), status


@bp.route("/p/<slug>/edit", methods=["GET", "POST"])
@login_required
def edit(slug):
    petition = managed_petition(slug)
    form = PetitionForm(obj=petition)
    form.slug.data = petition.slug  # fixed: the key is bound to it
    if request.method == "GET" and petition.contact_public_key is not None:
        form.contact_public_key.data = bytes(petition.contact_public_key).hex()
    if form.validate_on_submit():
        ledger.update_petition(petition, **form.policy())
        flash(_l("Saved."))
        return redirect(url_for("organiser.petition", slug=slug))
    status = 400 if request.method == "POST" else 200
    return render_template("organiser/edit.html", form=form, petition=petition), status


@bp.get("/p/<slug>")
@login_required
def petition(slug):
    return _petition_page(managed_petition(slug))


def _petition_page(petition, **forms):
    """The organiser's page of one petition; ``forms`` carry a refused form's values and errors,
    or an upload's outcome (upload_received, upload_rejected)."""
    forms.setdefault("paper_form", PaperForm(formdata=None))
    forms.setdefault("upload_form", UploadForm(formdata=None))
    forms.setdefault("shred_form", ShredForm(formdata=None))
    return render_template(
        "organiser/petition.html", petition=petition, count=ledger.current_count(petition), action=ActionForm(), **forms
    )


@bp.route("/p/<slug>/open", methods=["GET", "POST"])
@login_required
def open_(slug):
    """GET asks first, with a preview (text and rules are fixed once open); POST opens."""
    return _after_asking(managed_petition(slug), ledger.DRAFT, "organiser/confirm_open.html", ledger.open_petition)


@bp.route("/p/<slug>/close", methods=["GET", "POST"])
@login_required
def close(slug):
    """GET asks first (closing cannot be undone); POST closes."""
    return _after_asking(
        managed_petition(slug),
        ledger.OPEN,
        "organiser/confirm_close.html",
        lambda petition: ledger.close_petition(services(), petition),
    )


def _after_asking(petition, status, confirm_template, act):
    """An irreversible step: GET shows what it will do (only from ``status``); the POST from that page does it."""
    if request.method == "GET":
        if petition.status != status:
            return redirect(url_for("organiser.petition", slug=petition.slug))
        return render_template(confirm_template, petition=petition, action=ActionForm())
    if ActionForm().validate_on_submit():
        act(petition)
    return redirect(url_for("organiser.petition", slug=petition.slug))


@bp.post("/p/<slug>/paper")
@login_required
def paper_one(slug):
    """One signature typed from paper: back to an empty form saying "received", or this one's errors inline."""
    petition = managed_petition(slug)
    form = PaperForm()
    form.validate_on_submit()  # then every field's own check, so all errors show in one round
    if _paper_identity_checked(petition, form):
        ledger.add_paper_signatures(services(), petition, [form.identity])
        flash(_l("Received. Type the next one below."))
        return redirect(url_for("organiser.petition", slug=slug, _anchor="paper"), 303)
    return _petition_page(petition, paper_form=form), 400


def _outside_areas(error):
    return _l("Outside the areas %(areas)s.", areas=str(error))


def _paper_identity_checked(petition, form):
    """True if the typed signature is well formed; else every field's error at once, with what was typed kept."""
    ok = not form.errors
    if petition.require_postcode and not (form.postcode.data or "").strip():
        form.postcode.errors = list(form.postcode.errors) + [PAPER_FIELD_MESSAGES["postcode_missing"]]
        ok = False
    checks = [
        (form.name, canonical_name),
        (form.postcode, lambda text: ledger.eligible_postcode(petition, text)),
        (form.email, lambda text: canonical_email(text, services().dotless_domains)),
    ]
    ok = check_typed_fields(checks, PAPER_FIELD_MESSAGES, _outside_areas) and ok
    if ok:
        form.identity = ledger.canonical_identity(
            services(), petition, name=form.name.data, postcode=form.postcode.data, email=form.email.data,
            email_optional=True,
        )
    return ok


@form_page("organiser.petition", "organiser.paper_one")
def paper_refilled(slug, notice):
    """The petition's page with the paper form as typed, after switching language."""
    g.organiser = current_organiser()
    if g.organiser is None or notice:
        return None
    return _petition_page(managed_petition(slug), paper_form=PaperForm(formdata=typed())), 200


@bp.post("/p/<slug>/paper/upload")
@login_required
def paper_upload(slug):
    """A CSV of paper signatures; what was received or why the file was rejected, on the petition's own page."""
    petition = managed_petition(slug)
    form = UploadForm()
    if not form.validate_on_submit():
        return _petition_page(petition, upload_form=form), 400
    ledger.require_open(petition)  # before parsing: a closed petition costs nothing further
    try:
        identities = parse_paper_csv(services(), petition, form.file.data.read())
        ledger.add_paper_signatures(services(), petition, identities)
    except PaperFileError as error:
        rejected = [(e.line, e.reason) for e in error.errors]
        return _petition_page(petition, upload_rejected=rejected), 400
    return _petition_page(petition, upload_received=len(identities))


@bp.get("/p/<slug>/paper/template.csv")
@login_required
def paper_template(slug):
    managed_petition(slug)
    response = current_app.response_class(PAPER_TEMPLATE, mimetype="text/csv")
    response.headers["Content-Disposition"] = 'attachment; filename="paper-signatures.csv"'
    return response


@bp.get("/p/<slug>/names")
@login_required
def names(slug):
    petition = managed_petition(slug)
    before = request.args.get("before")
    if before is not None and not (before.isascii() and before.isdigit() and 0 < len(before) < 19):
        abort(400)
    rows = ledger.display_names(petition, int(before) if before else None, limit=100)
    return render_template("organiser/names.html", petition=petition, names=rows, action=ActionForm())


@bp.post("/p/<slug>/names/<int:leaf_index>/<any(hide, show):choice>")
@login_required
def moderate(slug, leaf_index, choice):
    petition = managed_petition(slug)
    if ActionForm().validate_on_submit():
        if not ledger.hide_display_name(services(), petition, leaf_index, hidden=choice == "hide"):
            abort(404)
    return redirect(url_for("organiser.names", slug=slug))


# A request cannot wait as long as `signing shred` does; pressing again finishes it.
WEB_SHRED_WAIT_SECONDS = 10


@bp.post("/p/<slug>/shred")
@login_required
def shred(slug):
    petition = managed_petition(slug)
    form = ShredForm()
    if form.validate_on_submit() and form.confirm_slug.data.strip() != petition.slug:
        form.confirm_slug.errors.append(SHRED_MISTYPED_MESSAGE)
    if form.errors:
        return _petition_page(petition, shred_form=form), 400
    ledger.shred(services(), petition, wait_seconds=WEB_SHRED_WAIT_SECONDS)
    flash(
        _l(
            "The petition's key is destroyed and proven gone from the database. Its log, totals and certificate "
            "remain. Backups made before now still hold the key until the operator rotates the master key."
        )
    )
    return redirect(url_for("organiser.petition", slug=slug))


# --- two-factor sign-in ---------------------------------------------------------

TWO_FACTOR_REFUSED_MESSAGE = _l(
    "The password or the code is not right, or there were too many attempts. Nothing was changed."
)


@bp.get("/two-factor")
@login_required
def two_factor():
    return render_template(
        "organiser/two_factor.html",
        enabled=g.organiser.totp_secret is not None,
        remaining=accounts.remaining_recovery_codes(g.organiser),
        disable_form=TwoFactorDisableForm(),
    )


@bp.route("/two-factor/enrol", methods=["GET", "POST"])
@login_required
def two_factor_enrol():
    """Show the pending secret (kept on the server); turn two-factor on once a code from it and the
    password come back."""
    if g.organiser.totp_secret is not None:
        return redirect(url_for("organiser.two_factor"))
    form = TwoFactorEnrolForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enable_two_factor(services(), g.organiser, form.password.data, form.code.data)
        except accounts.TwoFactorRefused:
            form.code.errors.append(TWO_FACTOR_REFUSED_MESSAGE)
        else:
            # Other sessions of this account end; this one carries on.
            session["epoch"] = accounts.organiser_by_id(g.organiser.id).session_epoch
            return render_template("organiser/two_factor_codes.html", codes=codes)
    # The secret never leaves the server except on this page: it is not sent back.
    secret = accounts.pending_two_factor_secret(services(), g.organiser)
    uri = twofactor.provisioning_uri(secret, g.organiser.email)
    status = 400 if request.method == "POST" else 200
    page = render_template(
        "organiser/two_factor_enrol.html",
        form=form,
        secret=twofactor.grouped(secret),
        uri=uri,
        qr_code=qrcode.svg(uri, str(_l("QR code of the key for your authenticator app"))),
    )
    return page, status


@bp.post("/two-factor/disable")
@login_required
def two_factor_disable():
    form = TwoFactorDisableForm()
    if form.validate_on_submit():
        try:
            accounts.disable_two_factor(services(), g.organiser, form.password.data, form.code.data)
        except accounts.TwoFactorRefused:
            form.code.errors.append(TWO_FACTOR_REFUSED_MESSAGE)
        else:
            flash(_l("Two-factor sign-in is off. Only your password protects this account now."))
            return redirect(url_for("organiser.two_factor"))
    page = render_template(
        "organiser/two_factor.html",
        enabled=g.organiser.totp_secret is not None,
        remaining=accounts.remaining_recovery_codes(g.organiser),
        disable_form=form,
    )
    return page, 400
