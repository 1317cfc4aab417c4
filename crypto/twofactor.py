"""Organiser two-factor sign-in: TOTP (RFC 6238) codes and one-time recovery codes.

The rules (when a code is asked for, lockout) live in
signing/ledger/accounts.py; this module only makes and checks secrets and
codes, composing ``cryptography``'s HOTP (RFC 4226) with a 30-second step.

- The TOTP secret is 160 random bits (RFC 4226 §4 recommends 160), shown to
  the organiser as base32 text and as an ``otpauth://`` URI. The server must
  be able to compute codes, so it cannot store a hash; it stores the secret
  encrypted (AES-256-GCM under a sub-key of the master key, bound to the
  organiser's id), so a copy of the database alone does not hand over the
  second factor of every account.
- A code is accepted for the current 30-second step or one either side
  (clock drift), and only for a step later than the last one accepted, so a
  code seen over a shoulder or in a log cannot be replayed.
- Recovery codes are 80 random bits each, written as 16 base32 characters in
  groups of four, and stored only as SHA-256 digests. A slow hash buys
  nothing here: Argon2 protects guessable secrets (passwords), while nobody
  can search 2^80 codes even at SHA-256 speed. It would cost something: an
  Argon2 check of ten codes takes about half a second, which would make a
  login with the right password measurably slower than one with a wrong
  password, telling an attacker the password was right.

``Organiser.recovery_codes`` holds the state as JSON:
``{"v": 1, "recovery": [hex SHA-256, ...], "last_step": N}``.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.hotp import HOTP

from crypto.errors import CryptoError
from crypto.keys import derive_subkey

ISSUER = "Countersign"
SECRET_BYTES = 20  # 160 bits: 32 base32 characters
SECRET_RE = re.compile(r"[A-Z2-7]{32}", re.ASCII)
TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_CODE_BYTES = 10  # 80 bits: 16 base32 characters
_RECOVERY_RE = re.compile(r"[A-Z2-7]{16}", re.ASCII)
_RECOVERY_DOMAIN = b"countersign/recovery-code/v1\x00"
STATE_VERSION = 1
# Sub-key of the master key that encrypts TOTP secrets at rest.
TOTP_SUBKEY_PURPOSE = "organiser-totp"
_SEALED_AD = b"countersign/totp-secret/v1\x00"
_NONCE_BYTES = 12


class SecretUnreadable(CryptoError):
    """A stored TOTP secret did not decrypt (wrong master key, or altered)."""


def secret_key(master_key):
    return derive_subkey(master_key, TOTP_SUBKEY_PURPOSE)


def seal_secret(key, organiser_id, secret):
    """``secret`` (base32) as stored: base64(nonce 12 || AES-GCM(20 bytes) || tag 16), 64 characters."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    raw = base64.b32decode(secret)
    sealed = AESGCM(key).encrypt(nonce, raw, _SEALED_AD + str(organiser_id).encode("ascii"))
    return base64.b64encode(nonce + sealed).decode("ascii")


def open_secret(key, organiser_id, stored):
    try:
        data = base64.b64decode(stored, validate=True)
        raw = AESGCM(key).decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], _SEALED_AD + str(organiser_id).encode())
    except (ValueError, InvalidTag):
        raise SecretUnreadable() from None
    return base64.b32encode(raw).decode("ascii")


@dataclass(frozen=True)
class State:
    recovery: tuple = ()
    last_step: int = -1

    def to_json(self):
        return json.dumps(
            {"v": STATE_VERSION, "recovery": list(self.recovery), "last_step": self.last_step}, sort_keys=True
        )

    @classmethod
    def from_json(cls, text):
        if not text:
            return cls()
        data = json.loads(text)
        return cls(recovery=tuple(data.get("recovery", ())), last_step=int(data.get("last_step", -1)))


def new_secret():
    return base64.b32encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def valid_secret(secret):
    return isinstance(secret, str) and SECRET_RE.fullmatch(secret) is not None


def grouped(text, size=4):
    return " ".join(text[i : i + size] for i in range(0, len(text), size))


def provisioning_uri(secret, account):
    """The ``otpauth://totp/…`` URI an authenticator app takes (Key Uri Format: issuer prefix and parameter)."""
    # Six digits and 30 seconds are the format's defaults, so they are left out.
    label = f"{quote(ISSUER, safe='')}:{quote(account, safe='')}"
    return f"otpauth://totp/{label}?{urlencode({'secret': secret, 'issuer': ISSUER})}"


def code_at_step(secret, step):
    """The TOTP code for time step ``step`` (RFC 6238 §4: HOTP over the step counter, SHA-1)."""
    # SHA-1 is what RFC 6238 and every authenticator app use; HMAC-SHA-1 is not broken.
    hotp = HOTP(base64.b32decode(secret), TOTP_DIGITS, SHA1(), enforce_key_length=False)  # noqa: S303  # nosec B303
    return hotp.generate(step).decode("ascii")


def _clean(code):
    return "".join((code or "").split()).replace("-", "").upper()


def totp_step(secret, code, timestamp, after_step=-1):
    """The time step ``code`` is valid for at ``timestamp`` (seconds since the epoch) and
    later than ``after_step``, or None. Every candidate step is compared, in constant time."""
    code = _clean(code)
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    current = int(timestamp) // TOTP_STEP_SECONDS
    found = None
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at_step(secret, step), code) and step > after_step:
            found = step
    return found


def new_recovery_codes():
    """(codes to show once, their digests to store)."""
    codes = [
        grouped(base64.b32encode(secrets.token_bytes(RECOVERY_CODE_BYTES)).decode("ascii"), 4).replace(" ", "-")
        for _ in range(RECOVERY_CODE_COUNT)
    ]
    return codes, tuple(recovery_digest(code) for code in codes)


def recovery_digest(code):
    """SHA-256 of a recovery code's canonical form (upper case, no dashes or spaces), or None."""
    cleaned = _clean(code)
    if not _RECOVERY_RE.fullmatch(cleaned):
        return None
    return hashlib.sha256(_RECOVERY_DOMAIN + cleaned.encode("ascii")).hexdigest()


def matching_recovery(state, code):
    """The stored digest ``code`` matches, or None; compares against every one."""
    digest = recovery_digest(code)
    if digest is None:
        return None
    found = None
    for stored in state.recovery:
        if hmac.compare_digest(stored, digest):
            found = stored
    return found
