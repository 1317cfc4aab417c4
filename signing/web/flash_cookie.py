"""The browser's half of a kept receipt: the one-time key, in the session cookie.

The cookie alone holds no code (the sealed code is in the database,
ledger/receipt_flash.py), and the database alone cannot read it.
"""

import base64

from flask import session

from ..ledger import receipt_flash

SESSION_KEY = "receipt_flash"


def keep(services, petition, receipt, kind):
    forget()
    key = receipt_flash.keep_receipt(services, petition, receipt, kind)
    session[SESSION_KEY] = base64.urlsafe_b64encode(key).decode()


def _key():
    value = session.get(SESSION_KEY)
    if not isinstance(value, str):
        return None
    try:
        return base64.urlsafe_b64decode(value.encode())
    except ValueError:
        return None


def shown(services, petition):
    key = _key()
    return None if key is None else receipt_flash.kept_receipt(services, petition, key)


def forget():
    """Delete what this browser kept, and the key from its cookie."""
    key = _key()
    if key is not None:
        receipt_flash.forget_receipt(key)
    session.pop(SESSION_KEY, None)


