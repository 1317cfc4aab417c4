"""Flask-WTF forms for organisers."""

import re

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, DateField, PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired, Optional, ValidationError

from crypto.errors import InvalidKey
from crypto.normalise import EMAIL_MAX_CHARS, NAME_MAX_CHARS, POSTCODE_MAX_CHARS
from crypto.sealed import parse_public_key

from ...ledger import SLUG_RE
from ...ledger.accounts import PASSWORD_MAX_CHARS
from ...ledger.petitions import is_one_line
from ..forms import REQUIRED, at_most, no_control_characters

AREAS_RE = re.compile(r"[A-Za-z]{1,2}(?:\s+[A-Za-z]{1,2})*", re.ASCII)


class LoginForm(FlaskForm):
    email = StringField(_l("Email address"), validators=[DataRequired(REQUIRED), at_most(254), no_control_characters])
    password = PasswordField(
        _l("Password"), validators=[DataRequired(REQUIRED), at_most(PASSWORD_MAX_CHARS), no_control_characters]
    )
    code = StringField(
        _l("Two-factor code (if you turned it on)"), validators=[Optional(), at_most(32), no_control_characters]
    )


class ActionForm(FlaskForm):
    """A button: nothing but the CSRF token."""


def _password_field(label):
    return PasswordField(label, validators=[DataRequired(REQUIRED), at_most(PASSWORD_MAX_CHARS), no_control_characters])


class TwoFactorEnrolForm(FlaskForm):
    # No secret here: it stays on the server (Organiser.totp_pending) until enrolment completes.
    password = _password_field(_l("Your password"))
    code = StringField(
        _l("The six-digit code your app shows now"),
        validators=[DataRequired(REQUIRED), at_most(32), no_control_characters],
    )


class TwoFactorDisableForm(FlaskForm):
    password = _password_field(_l("Your password"))
    code = StringField(
        _l("A code from your app, or a recovery code"),
        validators=[DataRequired(REQUIRED), at_most(32), no_control_characters],
    )


def one_line(_form, field):
    """A title becomes a mail's Subject: one line, no tabs or line breaks."""
    if not is_one_line(field.data or ""):
        raise ValidationError(_l("A title must be one line: remove line breaks and tabs."))


def valid_slug(_form, field):
    if not SLUG_RE.fullmatch(field.data or ""):
        raise ValidationError(_l("Use lower-case letters, digits and dashes only, like council-petitions-2026."))


def valid_areas(_form, field):
    if field.data and not AREAS_RE.fullmatch(field.data.strip()):
        raise ValidationError(_l("List postcode areas separated by spaces, like S DN."))


def valid_thresholds(_form, field):
    parts = (field.data or "").split()
    if not all(part.isdigit() and 0 < int(part) < 10**9 for part in parts):
        raise ValidationError(_l("List whole numbers separated by spaces, like 1000 10000."))


def valid_contact_key(_form, field):
    if field.data and field.data.strip():
        try:
            parse_public_key(field.data)
        except InvalidKey:
            raise ValidationError(_l("Paste the 64-character public key printed by signing keys organiser.")) from None


class DayField(DateField):
    """A date as a date input sends it (2026-06-30); its error in the reader's language."""

    def process_formdata(self, valuelist):
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError(_l("Please enter a date like 2026-06-30.")) from None


class PetitionForm(FlaskForm):
    slug = StringField(
        _l("Address (slug)"), validators=[DataRequired(REQUIRED), at_most(64), no_control_characters, valid_slug]
    )
    title = StringField(
        _l("Title"), validators=[DataRequired(REQUIRED), at_most(200), no_control_characters, one_line]
    )
    body = TextAreaField(_l("Text"), validators=[DataRequired(REQUIRED), at_most(20_000), no_control_characters])
    eligibility = TextAreaField(
        _l("Who may sign"), validators=[Optional(), at_most(2_000), no_control_characters]
    )
    # The same text for readers of Traditional Chinese; empty shows them the English.
    title_zh = StringField(
        _l("Title in Traditional Chinese"), validators=[Optional(), at_most(200), no_control_characters, one_line]
    )
    body_zh = TextAreaField(
        _l("Text in Traditional Chinese"), validators=[Optional(), at_most(20_000), no_control_characters]
    )
    eligibility_zh = TextAreaField(
        _l("Who may sign, in Traditional Chinese"), validators=[Optional(), at_most(2_000), no_control_characters]
    )
    opens_on = DayField(_l("Opens on (optional)"), validators=[Optional()])
    closes_on = DayField(_l("Closes on (optional)"), validators=[Optional()])
    require_email = BooleanField(_l("Ask for an email address (confirmed by mail, never stored)"), default=True)
    require_postcode = BooleanField(_l("Ask for a postcode"), default=True)
    at_risk = BooleanField(_l("For signers at risk: nobody may be able to test whether someone signed"), default=False)
    allowed_areas = StringField(
        _l("Postcode areas allowed (empty: anywhere)"),
        validators=[Optional(), at_most(200), no_control_characters, valid_areas],
    )
    display_names_allowed = BooleanField(_l("Let signers choose a public display name"), default=True)
    thresholds = StringField(
        _l("Thresholds (signature counts that matter)"),
        validators=[Optional(), at_most(200), no_control_characters, valid_thresholds],
    )
    contact_public_key = StringField(
        _l("Your contact public key (optional: offers signers “keep me informed”)"),
        validators=[Optional(), at_most(80), no_control_characters, valid_contact_key],
    )

    def validate_at_risk(self, field):
        if field.data and not self.require_email.data:
            raise ValidationError(
                _l("A petition for signers at risk must ask for an email address: without one, anyone who knows a "
                   "signer's name and postcode can test whether they signed.")
            )

    def validate_closes_on(self, field):
        if field.data and self.opens_on.data and field.data < self.opens_on.data:
            raise ValidationError(_l("The closing date must not be before the opening date."))

    def policy(self):
        return {
            "title": self.title.data.strip(),
            "body": self.body.data.replace("\r\n", "\n").strip(),
            "eligibility": (self.eligibility.data or "").strip(),
            "title_zh": (self.title_zh.data or "").strip(),
            "body_zh": (self.body_zh.data or "").replace("\r\n", "\n").strip(),
            "eligibility_zh": (self.eligibility_zh.data or "").strip(),
            "opens_on": self.opens_on.data,
            "closes_on": self.closes_on.data,
            "require_email": self.require_email.data,
            "require_postcode": self.require_postcode.data,
            "at_risk": self.at_risk.data,
            "allowed_areas": " ".join((self.allowed_areas.data or "").upper().split()),
            "display_names_allowed": self.display_names_allowed.data,
            "thresholds": " ".join((self.thresholds.data or "").split()),
            "contact_public_key": parse_public_key(self.contact_public_key.data)
            if (self.contact_public_key.data or "").strip()
            else None,
        }


class PaperForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[DataRequired(_l("The name is missing.")), at_most(NAME_MAX_CHARS), no_control_characters],
    )
    postcode = StringField(
        _l("Postcode"), validators=[Optional(), at_most(POSTCODE_MAX_CHARS), no_control_characters]
    )
    email = StringField(
        _l("Email address (if written)"), validators=[Optional(), at_most(EMAIL_MAX_CHARS), no_control_characters]
    )


class UploadForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired(_l("Choose a CSV file to upload."))])


class ShredForm(FlaskForm):
    confirm_slug = StringField(
        _l("Type the petition's address to confirm"),
        validators=[DataRequired(REQUIRED), at_most(64), no_control_characters],
    )
