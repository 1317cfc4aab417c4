"""Flask-WTF forms: field presence and length caps; identity rules live in ledger."""

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from crypto.normalise import EMAIL_MAX_CHARS, NAME_MAX_CHARS, POSTCODE_MAX_CHARS

from .ledger import DISPLAY_NAME_MAX_CHARS

# A receipt is 26 characters; room for dashes and spaces people add.
RECEIPT_MAX_CHARS = 100


def no_control_characters(_form, field):
    """Refuse control characters and undecodable bytes (read as U+FFFD) outright."""
    value = field.data or ""
    if "\ufffd" in value or any(ord(ch) < 32 and ch not in "\t\n\r" or ord(ch) == 127 for ch in value):
        raise ValidationError(_l("This field contains characters that cannot be accepted."))


class SignForm(FlaskForm):
    name = StringField(
        _l("Full name"),
        validators=[DataRequired(_l("Please enter your name.")), Length(max=NAME_MAX_CHARS), no_control_characters],
    )
    postcode = StringField(
        _l("Postcode"), validators=[Optional(), Length(max=POSTCODE_MAX_CHARS), no_control_characters]
    )
    email = StringField(
        _l("Email address"), validators=[Optional(), Length(max=EMAIL_MAX_CHARS), no_control_characters]
    )
    display_name = StringField(
        _l("Public display name (optional)"),
        validators=[Optional(), Length(max=DISPLAY_NAME_MAX_CHARS), no_control_characters],
    )
    eligible = BooleanField(
        _l("I confirm that I am eligible to sign this petition."),
        validators=[InputRequired(_l("Please confirm that you are eligible to sign."))],
    )

    def require(self, field, message):
        """Make a field the petition's policy asks for required."""
        if not (field.data or "").strip():
            field.errors = list(field.errors) + [message]
            return False
        return True


class ConfirmForm(FlaskForm):
    """The button that confirms a signature: only a CSRF token, so following a link (GET) never confirms."""


class ReceiptForm(FlaskForm):
    receipt = StringField(
        _l("Receipt code"),
        validators=[
            DataRequired(_l("Please enter your receipt code.")),
            Length(max=RECEIPT_MAX_CHARS),
            no_control_characters,
        ],
    )


class WithdrawForm(ReceiptForm):
    receipt = HiddenField(validators=[DataRequired(), Length(max=RECEIPT_MAX_CHARS), no_control_characters])
    confirm = BooleanField(
        _l("Yes, withdraw my signature."),
        validators=[InputRequired(_l("Please tick the box to confirm the withdrawal."))],
    )
