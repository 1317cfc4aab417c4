"""Organiser accounts: Argon2id password hashes, lockout, access to petitions.

Organisers are not anonymous (they run a public campaign), so their email is
stored; what must not leak is whether an address has an account, so every
failed login reads the same and costs the same.
"""

from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from peewee import IntegrityError

from .models import Organiser, Petition

MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
PASSWORD_MIN_CHARS = 12
PASSWORD_MAX_CHARS = 1024

password_hasher = PasswordHasher()
# Verified against when the account does not exist, so that case costs the same.
_DUMMY_HASH = password_hasher.hash("countersign: no such organiser")


class AccountError(Exception):
    pass


class LoginFailed(AccountError):
    """Wrong address, wrong password, or locked: deliberately indistinguishable."""


class WeakPassword(AccountError):
    pass


class OrganiserExists(AccountError):
    pass


def normalise_email(email):
    return (email or "").strip().lower()


def check_password_strength(password):
    if len(password) < PASSWORD_MIN_CHARS:
        raise WeakPassword(f"a password needs at least {PASSWORD_MIN_CHARS} characters")
    if len(password) > PASSWORD_MAX_CHARS:
        raise WeakPassword(f"a password may have at most {PASSWORD_MAX_CHARS} characters")


def add_organiser(email, password, is_operator=False):
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise AccountError("that is not an email address")
    check_password_strength(password)
    try:
        return Organiser.create(email=email, password_hash=password_hasher.hash(password), is_operator=is_operator)
    except IntegrityError:
        raise OrganiserExists(f"an organiser with the address {email} already exists") from None


def authenticate(email, password, now):
    """The organiser with these credentials, or LoginFailed. ``now`` is naive UTC."""
    organiser = Organiser.get_or_none(Organiser.email == normalise_email(email))
    if organiser is None:
        _verify(_DUMMY_HASH, password)
        raise LoginFailed()
    locked = organiser.locked_until is not None and organiser.locked_until > now
    if locked or not _verify(organiser.password_hash, password):
        if not locked:
            _record_failure(organiser, now)
        raise LoginFailed()
    updates = {"failed_logins": 0, "locked_until": None}
    if password_hasher.check_needs_rehash(organiser.password_hash):
        updates["password_hash"] = password_hasher.hash(password)
    Organiser.update(**updates).where(Organiser.id == organiser.id).execute()
    return Organiser.get_by_id(organiser.id)


def _verify(password_hash, password):
    try:
        return password_hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _record_failure(organiser, now):
    failures = organiser.failed_logins + 1
    locked_until = now + LOCKOUT if failures >= MAX_FAILED_LOGINS else None
    Organiser.update(failed_logins=0 if locked_until else failures, locked_until=locked_until).where(
        Organiser.id == organiser.id
    ).execute()


def change_password(organiser, new_password):
    check_password_strength(new_password)
    Organiser.update(password_hash=password_hasher.hash(new_password), session_epoch=Organiser.session_epoch + 1).where(
        Organiser.id == organiser.id
    ).execute()


def petitions_for(organiser):
    query = Petition.select().order_by(Petition.id.desc())
    return query if organiser.is_operator else query.where(Petition.organiser == organiser.id)


def may_manage(organiser, petition):
    return organiser.is_operator or petition.organiser_id == organiser.id
