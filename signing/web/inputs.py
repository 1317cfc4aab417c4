"""Malformed input refused at the edge, before any view, form or query sees it (DESIGN §9).

Forms check their own fields (forms.py); what is checked here is what no form
sees: the values in the URL's path, and the kind of body a request carries.

- A petition address that cannot be a slug is a 404 without a database
  lookup (PostgreSQL refuses a NUL in a query string with an error, which
  would otherwise be a 500).
- A confirmation token is left to ``ledger.token_digest``, which refuses
  anything but 43 base64url characters (control characters, undecodable
  bytes, NULs included) before any lookup, with a page that explains
  links. Any other text in a path with control characters or undecodable
  bytes is a 400.
- A whole number in the path that no row could have (beyond a 64-bit
  integer, which SQLite refuses with an OverflowError) is a 404.
- Every page takes HTML forms only: a POST whose body is JSON, text, XML
  or anything else is a 415, and a multipart body is accepted only where
  a file is uploaded, so a form field can never arrive as a file or a
  number instead of text.
- A form body with bytes that are not UTF-8 is a 400. (Werkzeug would keep
  them as literal "%FF" text, which a form could not tell from what a person
  typed.)
"""

from urllib.parse import unquote_to_bytes

from flask import abort, request
from flask_babel import lazy_gettext as _l

from ..ledger import SLUG_RE
from .errors import render_error
from .forms import has_control_characters
from .uploads import UPLOAD_ENDPOINTS

MAX_ROW_ID = 2**63 - 1
# No path value of ours (slug, token, file name) comes near this.
MAX_PATH_VALUE_CHARS = 200
FORM_TYPES = frozenset({"application/x-www-form-urlencoded"})
UPLOAD_TYPES = FORM_TYPES | {"multipart/form-data"}
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UNDECODABLE_MESSAGE = _l("This form contains characters that cannot be accepted. Please check what you typed.")


def check_path_values(_endpoint, values):
    """Refuse path values no route could serve, before the view runs (a url_value_preprocessor)."""
    if not values:
        return
    for name, value in values.items():
        if isinstance(value, int):
            if not 0 <= value <= MAX_ROW_ID:
                abort(404)
        elif name == "slug":
            if not SLUG_RE.fullmatch(value):
                abort(404)
        elif name == "token":
            continue
        elif isinstance(value, str) and (has_control_characters(value) or len(value) > MAX_PATH_VALUE_CHARS):
            abort(400)


def check_body_type():
    """Refuse a body that is not a form (415) or not UTF-8 (400), before CSRF or any form reads it."""
    if request.method not in BODY_METHODS or request.endpoint is None:
        return None
    if not request.content_length and not request.headers.get("Transfer-Encoding") and not request.mimetype:
        return None  # no body at all: the form's CSRF check answers it
    allowed = UPLOAD_TYPES if request.endpoint in UPLOAD_ENDPOINTS else FORM_TYPES
    if request.mimetype not in allowed:
        abort(415)
    # Read once (within MAX_CONTENT_LENGTH, else 413); the form is parsed from this copy.
    if request.mimetype in FORM_TYPES and not utf8_form(request.get_data(cache=True)):
        return render_error(400, UNDECODABLE_MESSAGE)
    return None


def utf8_form(body):
    """True if every name and value of an urlencoded ``body`` is UTF-8 once unescaped."""
    for part in body.split(b"&"):
        for piece in part.split(b"=", 1):
            try:
                unquote_to_bytes(piece.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return False
    return True


def init_app(app):
    app.url_value_preprocessor(check_path_values)
    app.before_request(check_body_type)
