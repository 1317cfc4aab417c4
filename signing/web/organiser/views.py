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
from crypto.errors import InvalidIdentity

from ... import ledger
from ...ledger import accounts
from ...paper_csv import PaperFileError, parse_paper_csv
from ..errors import render_error
from ..lookup import services
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
    "email": _l("Check the email address: it is not valid."),
}

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
    return render_template("organiser/dashboard.html", petitions=petitions, action=ActionForm())


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
    petition = managed_petition(slug)
    return render_template(
        "organiser/petition.html",
        petition=petition,
        count=ledger.current_count(petition),
        action=ActionForm(),
        paper_form=PaperForm(),
        upload_form=UploadForm(),
        shred_form=ShredForm(),
    )


@bp.post("/p/<slug>/open")
@login_required
def open_(slug):
    petition = managed_petition(slug)
    if ActionForm().validate_on_submit():
        ledger.open_petition(petition)
    return redirect(url_for("organiser.petition", slug=slug))


@bp.post("/p/<slug>/close")
@login_required
def close(slug):
    petition = managed_petition(slug)
    if ActionForm().validate_on_submit():
        ledger.close_petition(services(), petition)
    return redirect(url_for("organiser.petition", slug=slug))


def _form_refused(petition, form):
    """The result page listing every message of a form that did not validate."""
    messages = " ".join(str(message) for errors in form.errors.values() for message in errors)
    return _paper_result_page(petition, errors=[(0, messages)], status=400)


def _paper_result_page(petition, result=None, errors=None, status=200):
    return (
        render_template("organiser/paper_result.html", petition=petition, result=result, errors=errors or []),
        status,
    )


@bp.post("/p/<slug>/paper")
@login_required
def paper_one(slug):
    petition = managed_petition(slug)
    form = PaperForm()
    if not form.validate_on_submit():
        return _form_refused(petition, form)
    try:
        identity = ledger.canonical_identity(
            services(),
            petition,
            name=form.name.data,
            postcode=form.postcode.data,
            email=form.email.data,
            email_optional=True,
        )
        result = ledger.add_paper_signatures(services(), petition, [identity])
    except InvalidIdentity as error:
        return _paper_result_page(petition, errors=[(0, PAPER_FIELD_MESSAGES[error.field])], status=400)
    except ledger.PostcodeNotEligible as error:
        return _paper_result_page(
            petition, errors=[(0, _l("Outside the areas %(areas)s.", areas=str(error)))], status=400
        )
    return _paper_result_page(petition, result)


@bp.post("/p/<slug>/paper/upload")
@login_required
def paper_upload(slug):
    petition = managed_petition(slug)
    form = UploadForm()
    if not form.validate_on_submit():
        return _form_refused(petition, form)
    ledger.require_open(petition)  # before parsing: a closed petition costs nothing further
    try:
        identities = parse_paper_csv(services(), petition, form.file.data.read())
        result = ledger.add_paper_signatures(services(), petition, identities)
    except PaperFileError as error:
        return _paper_result_page(petition, errors=[(e.line, e.reason) for e in error.errors], status=400)
    return _paper_result_page(petition, result)


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


@bp.post("/p/<slug>/shred")
@login_required
def shred(slug):
    petition = managed_petition(slug)
    form = ShredForm()
    if not form.validate_on_submit() or form.confirm_slug.data.strip() != petition.slug:
        return render_error(400, _l("Type the petition's address exactly to confirm shredding. Nothing was done."))
    ledger.shred(services(), petition)
    flash(_l("The petition's key is destroyed. Its log, totals and certificate remain."))
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
    """Show a new secret; turn two-factor on once a code from it (and the password) comes back."""
    if g.organiser.totp_secret is not None:
        return redirect(url_for("organiser.two_factor"))
    form = TwoFactorEnrolForm()
    if form.validate_on_submit():
        try:
            codes = accounts.enable_two_factor(
                services(), g.organiser, form.password.data, form.secret.data, form.code.data
            )
        except accounts.TwoFactorRefused:
            form.code.errors.append(TWO_FACTOR_REFUSED_MESSAGE)
        else:
            # Other sessions of this account end; this one carries on.
            session["epoch"] = accounts.organiser_by_id(g.organiser.id).session_epoch
            return render_template("organiser/two_factor_codes.html", codes=codes)
    if not twofactor.valid_secret(form.secret.data):
        form.secret.data = twofactor.new_secret()
    status = 400 if request.method == "POST" else 200
    page = render_template(
        "organiser/two_factor_enrol.html",
        form=form,
        secret=twofactor.grouped(form.secret.data),
        uri=twofactor.provisioning_uri(form.secret.data, g.organiser.email),
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
