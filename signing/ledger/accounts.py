"""Organiser accounts: Argon2id password hashes, lockout, access to petitions.

Organisers are not anonymous (they run a public campaign), so their email is
stored; what must not leak is whether an address has an account, so every
failed login reads the same and costs the same.
"""

from dataclasses import replace
from datetime import timedelta
from functools import lru_cache

from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from crypto import twofactor

from ..db import insert_unless_taken
from ..models import Organiser, Petition
from .errors import AccountError, LoginFailed, OrganiserExists, TwoFactorRefused, WeakPassword

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 1024



@lru_cache(maxsize=4)
def _dummy_hash(hasher):
    """Verified against when the account does not exist, so that case costs the same."""
    return hasher.hash("countersign: no such organiser")


def organiser_by_id(organiser_id):
    return Organiser.get_or_none(Organiser.id == organiser_id)


def normalise_email(email):
    return (email or "").strip().lower()


def check_password_strength(password):
    if len(password) < PASSWORD_MIN_CHARS:
        raise WeakPassword(f"a password needs at least {PASSWORD_MIN_CHARS} characters")
    if len(password) > PASSWORD_MAX_CHARS:
        raise WeakPassword(f"a password may have at most {PASSWORD_MAX_CHARS} characters")


def add_organiser(services, email, password, is_operator=False):
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError("that is not an email address")
    check_password_strength(password)
    password_hash = services.password_hasher.hash(password)
    fields = {"email": email, "password_hash": password_hash, "is_operator": is_operator}
    if not insert_unless_taken(Organiser, [Organiser.email], **fields):
        raise OrganiserExists(f"an organiser with the address {email} already exists")
    return Organiser.get(Organiser.email == email)


def authenticate(services, email, password, code=None):
    """The organiser with these credentials, or LoginFailed.

    With two-factor on, ``code`` must be a fresh TOTP code or an unused
    recovery code. A wrong password, a missing or wrong code, a locked account and
    no account at all raise the same LoginFailed after the same Argon2
    verification, so neither the answer nor its timing says which. Wrong
    passwords count towards the password lock, wrong codes (after the right
    password) towards the code lock; an organiser with two-factor is held
    only by the code lock, so a stranger cannot keep them out.
    """
    now, hasher = services.naive_now(), services.password_hasher
    organiser = Organiser.get_or_none(Organiser.email == normalise_email(email))
    if organiser is None:
        _verify(hasher, _dummy_hash(hasher), password)
        raise LoginFailed()
    # Verified even when locked: a locked account answering faster would say it exists.
    password_ok = _verify(hasher, organiser.password_hash, password)
    if not password_ok:
        if not _locked(organiser, now):
            _record_failure(organiser, now)
        raise LoginFailed()
    if organiser.totp_secret:
        # Wrong passwords (anyone who knows the address can send them) lock the
        # password alone, never password + code; wrong codes after the right
        # password lock the code on their own.
        if _codes_locked(organiser, now):
            raise LoginFailed()
        if not _use_second_factor(services, organiser, code):
            _record_code_failure(organiser, now)
            raise LoginFailed()
    elif _locked(organiser, now):
        raise LoginFailed()
    updates = {"failed_logins": 0, "locked_until": None, "failed_codes": 0, "codes_locked_until": None}
    if hasher.check_needs_rehash(organiser.password_hash):
        updates["password_hash"] = hasher.hash(password)
    Organiser.update(**updates).where(Organiser.id == organiser.id).execute()
    return Organiser.get_by_id(organiser.id)


def _verify(hasher, password_hash, password):
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _locked(organiser, now):
    return organiser.locked_until is not None and organiser.locked_until > now


def _codes_locked(organiser, now):
    return organiser.codes_locked_until is not None and organiser.codes_locked_until > now


def _record_code_failure(organiser, now):
    Organiser.update(failed_codes=Organiser.failed_codes + 1).where(Organiser.id == organiser.id).execute()
    Organiser.update(failed_codes=0, codes_locked_until=now + LOCKOUT).where(
        (Organiser.id == organiser.id) & (Organiser.failed_codes >= MAX_FAILED_LOGINS)
    ).execute()


def _totp_key(services):
    return twofactor.secret_key(services.keyring.master_key)


def _use_second_factor(services, organiser, code):
    """Accept a TOTP code newer than the last one used, or spend a recovery code; each works once.

    The state is replaced only if it is still what was read (compare and
    set), so two requests with the same code cannot both succeed.
    """
    state = twofactor.State.from_json(organiser.recovery_codes)
    timestamp = services.clock().timestamp()
    try:
        secret = twofactor.open_secret(_totp_key(services), organiser.id, organiser.totp_secret)
    except (twofactor.SecretUnreadable, TypeError):
        secret = None  # fail closed on the TOTP side; a recovery code still works
    step = None if secret is None else twofactor.totp_step(secret, code, timestamp, after_step=state.last_step)
    if step is not None:
        new_state = replace(state, last_step=step)
    else:
        used = twofactor.matching_recovery(state, code)
        if used is None:
            return False
        new_state = replace(state, recovery=tuple(d for d in state.recovery if d != used))
    return (
        Organiser.update(recovery_codes=new_state.to_json())
        .where((Organiser.id == organiser.id) & (Organiser.recovery_codes == organiser.recovery_codes))
        .execute()
        == 1
    )


def _record_failure(organiser, now):
    """Count one failure in the database itself (no read-modify-write: concurrent failures on
    any number of workers and hosts all count); the one that reaches the limit locks."""
    Organiser.update(failed_logins=Organiser.failed_logins + 1).where(Organiser.id == organiser.id).execute()
    Organiser.update(failed_logins=0, locked_until=now + LOCKOUT).where(
        (Organiser.id == organiser.id) & (Organiser.failed_logins >= MAX_FAILED_LOGINS)
    ).execute()


def change_password(services, organiser, new_password):
    check_password_strength(new_password)
    password_hash = services.password_hasher.hash(new_password)
    Organiser.update(password_hash=password_hash, session_epoch=Organiser.session_epoch + 1).where(
        Organiser.id == organiser.id
    ).execute()


def petitions_for(organiser):
    query = Petition.select().order_by(Petition.id.desc())
    return query if organiser.is_operator else query.where(Petition.organiser == organiser.id)


def may_manage(organiser, petition):
    return organiser.is_operator or petition.organiser_id == organiser.id


# --- two-factor sign-in --------------------------------------------------------


def _check_password_and_lock(services, organiser, password):
    now = services.naive_now()
    fresh = Organiser.get_by_id(organiser.id)
    password_ok = _verify(services.password_hasher, fresh.password_hash, password)
    if _locked(fresh, now):
        raise TwoFactorRefused()
    if not password_ok:
        _record_failure(fresh, now)
        raise TwoFactorRefused()
    return fresh


def pending_two_factor_secret(services, organiser):
    """The secret offered to ``organiser`` for enrolment, made and kept on the server until
    enrolment completes (the client never sends a secret back). The same one on every
    visit, so a page reloaded after scanning still matches the app."""
    key = _totp_key(services)
    fresh = Organiser.get_by_id(organiser.id)
    if fresh.totp_pending is not None:
        try:
            return twofactor.open_secret(key, fresh.id, fresh.totp_pending)
        except twofactor.SecretUnreadable:
            pass  # sealed under another master key: offer a new one
    secret = twofactor.new_secret()
    Organiser.update(totp_pending=twofactor.seal_secret(key, fresh.id, secret)).where(
        (Organiser.id == fresh.id) & (Organiser.totp_pending == fresh.totp_pending)
    ).execute()
    # Another request may have stored one first: use whichever is stored.
    stored = Organiser.get_by_id(fresh.id).totp_pending
    return twofactor.open_secret(key, fresh.id, stored)


def enable_two_factor(services, organiser, password, code):
    """Turn two-factor on with the pending secret once ``code`` proves the app has it; return the
    recovery codes.

    The codes are shown once and stored only as digests. Every other session
    of the organiser ends (the session epoch moves on); the caller carries
    its own session over with ``new_epoch``.
    """
    now = services.naive_now()
    fresh = _check_password_and_lock(services, organiser, password)
    if fresh.totp_secret is not None:
        raise TwoFactorRefused("two-factor is on already")
    step = None
    if fresh.totp_pending is not None:
        try:
            secret = twofactor.open_secret(_totp_key(services), fresh.id, fresh.totp_pending)
        except twofactor.SecretUnreadable:
            secret = None
        if secret is not None:
            step = twofactor.totp_step(secret, code, services.clock().timestamp())
    if step is None:
        _record_failure(fresh, now)
        raise TwoFactorRefused()
    codes, digests = twofactor.new_recovery_codes()
    state = twofactor.State(recovery=digests, last_step=step)
    enabled = (
        Organiser.update(
            totp_secret=fresh.totp_pending,
            totp_pending=None,
            recovery_codes=state.to_json(),
            failed_logins=0,
            session_epoch=Organiser.session_epoch + 1,
        )
        .where(
            (Organiser.id == fresh.id)
            & Organiser.totp_secret.is_null()
            & (Organiser.totp_pending == fresh.totp_pending)
        )
        .execute()
    )
    if enabled != 1:
        raise TwoFactorRefused("two-factor was turned on by another request")
    return codes


def disable_two_factor(services, organiser, password, code):
    """Turn two-factor off, given the password and a current code or an unused recovery code."""
    fresh = _check_password_and_lock(services, organiser, password)
    if fresh.totp_secret is None:
        return
    if not _use_second_factor(services, fresh, code):
        _record_failure(fresh, services.naive_now())
        raise TwoFactorRefused()
    Organiser.update(totp_secret=None, recovery_codes=None, failed_logins=0).where(Organiser.id == fresh.id).execute()


def reseal_two_factor_secrets(old_master_key, new_master_key):
    """Every stored TOTP secret (on or pending) sealed again under the new master key's sub-key."""
    new_key = twofactor.secret_key(new_master_key)
    old_key = None if old_master_key is None else twofactor.secret_key(old_master_key)
    sealed = Organiser.totp_secret.is_null(False) | Organiser.totp_pending.is_null(False)
    for organiser in Organiser.select().where(sealed):
        updates = {}
        for field in ("totp_secret", "totp_pending"):
            stored = getattr(organiser, field)
            if stored is None or _opens_secret(new_key, organiser.id, stored):
                continue
            secret = None if old_key is None else _opens_secret(old_key, organiser.id, stored)
            if secret is not None:  # one neither key opens stays as it is: it fails closed at sign-in
                updates[field] = twofactor.seal_secret(new_key, organiser.id, secret)
        if updates:
            Organiser.update(**updates).where(Organiser.id == organiser.id).execute()


def _opens_secret(key, organiser_id, stored):
    try:
        return twofactor.open_secret(key, organiser_id, stored)
    except twofactor.SecretUnreadable:
        return None


def remaining_recovery_codes(organiser):
    return len(twofactor.State.from_json(organiser.recovery_codes).recovery)


def reset_two_factor(email):
    """The operator's way back in for an organiser who lost both app and codes.

    Turns two-factor off, lifts any lockout and ends every session of the
    account. Returns False if there is no such account.
    """
    return (
        Organiser.update(
            totp_secret=None,
            totp_pending=None,
            recovery_codes=None,
            failed_logins=0,
            locked_until=None,
            failed_codes=0,
            codes_locked_until=None,
            session_epoch=Organiser.session_epoch + 1,
        )
        .where(Organiser.email == normalise_email(email))
        .execute()
        == 1
    )
