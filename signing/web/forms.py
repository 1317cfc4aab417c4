"""Flask-WTF forms: field presence and length caps; identity rules live in ledger."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from crypto.errors import InvalidIdentity
from crypto.normalise import EMAIL_MAX_CHARS, NAME_MAX_CHARS, POSTCODE_MAX_CHARS

from .. import ledger
from ..ledger import DISPLAY_NAME_MAX_CHARS

# A receipt is 26 characters; room for dashes and spaces people add.
RECEIPT_MAX_CHARS = 100


# WTForms' own messages are English only (WTF_I18N_ENABLED is off, see
# signing/web/i18n.py): every validator here carries a message of ours instead.
REQUIRED = _l("Please fill in this field.")


def at_most(chars):
    """Length(max=chars), its message in the reader's language."""
    return Length(max=chars, message=_l("Please use at most %(max)d characters."))


def has_control_characters(value):
    """True if ``value`` has a control character (C0 but tab and line breaks, DEL, C1),
    a surrogate, a noncharacter, or U+FFFD (what undecodable bytes are read as)."""
    for ch in value:
        code = ord(ch)
        if ch in "\t\n\r":
            continue
        if (
            code < 32
            or 127 <= code < 160
            or 0xD800 <= code <= 0xDFFF
            or 0xFDD0 <= code <= 0xFDEF
            or code & 0xFFFE == 0xFFFE
            or code == 0xFFFD
        ):
            return True
    return False


def no_control_characters(_form, field):
    """Refuse control characters and undecodable bytes outright, and anything not text."""
    value = field.data or ""
    if not isinstance(value, str) or has_control_characters(value):
        raise ValidationError(_l("This field contains characters that cannot be accepted."))


class SignForm(FlaskForm):
    name = StringField(
        _l("Full name"),
        validators=[DataRequired(_l("Please enter your name.")), at_most(NAME_MAX_CHARS), no_control_characters],
    )
    postcode = StringField(
        _l("Postcode"), validators=[Optional(), at_most(POSTCODE_MAX_CHARS), no_control_characters]
    )
    email = StringField(
        _l("Email address"), validators=[Optional(), at_most(EMAIL_MAX_CHARS), no_control_characters]
    )
    display_name = StringField(
        _l("Public display name (optional)"),
        validators=[Optional(), at_most(DISPLAY_NAME_MAX_CHARS), no_control_characters],
    )
    eligible = BooleanField(
        _l("I confirm that I am eligible to sign this petition."),
        validators=[InputRequired(_l("Please confirm that you are eligible to sign."))],
    )
    keep_informed = BooleanField(_l("Keep me informed about this petition"))
    contact_email = StringField(
        _l("Email address for news (optional)"),
        validators=[Optional(), at_most(EMAIL_MAX_CHARS), no_control_characters],
    )

    def contact(self):
        """The address to keep informed, if asked: the one given for news, else the signing one."""
        if not self.keep_informed.data:
            return None
        return (self.contact_email.data or "").strip() or (self.email.data or "").strip() or None

    def require(self, field, message):
        """Make a field the petition's policy asks for required."""
        if not (field.data or "").strip():
            field.errors = list(field.errors) + [message]
            return False
        return True


class ConfirmForm(FlaskForm):
    """The button that confirms a signature: only a CSRF token, so following a link (GET) never confirms."""


class ForgetReceiptForm(FlaskForm):
    """The button that removes a shown receipt code from this device: only a CSRF token."""


class ReceiptForm(FlaskForm):
    receipt = StringField(
        _l("Receipt code"),
        validators=[
            DataRequired(_l("Please enter your receipt code.")),
            at_most(RECEIPT_MAX_CHARS),
            no_control_characters,
        ],
    )


class WithdrawForm(ReceiptForm):
    receipt = HiddenField(validators=[DataRequired(REQUIRED), at_most(RECEIPT_MAX_CHARS), no_control_characters])
    confirm = BooleanField(
        _l("Yes, withdraw my signature."),
        validators=[InputRequired(_l("Please tick the box to confirm the withdrawal."))],
    )


def check_typed_fields(checks, identity_messages, not_eligible):
    """Run each ``(field, check)`` on what was typed; put each refusal on its field. True if none refused.

    The ledger's own rules (canonical forms, the petition's areas), run early
    so that a form shows every field's error in one round. Empty fields and
    fields already flagged are left alone: whether a field is required is
    checked apart from this.
    """
    ok = True
    for field, check in checks:
        if field.errors or not (field.data or "").strip():
            continue
        try:
            check(field.data)
        except InvalidIdentity as error:
            field.errors = list(field.errors) + [identity_messages[error.field]]
            ok = False
        except ledger.PostcodeNotEligible as error:
            field.errors = list(field.errors) + [not_eligible(error)]
            ok = False
    return ok
