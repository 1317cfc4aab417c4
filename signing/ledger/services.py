"""What every ledger call is given: keys, settings, clock, mailer, tag throttle.

Functions take a ``Services`` rather than reading globals, so tests can
inject time and the CLI and the web share one code path.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from crypto.normalise import DEFAULT_DOTLESS_DOMAINS
from crypto.tags import DEFAULT_ARGON2, Argon2Params


def utcnow():
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    keyring: object
    publish_interval: timedelta = timedelta(minutes=10)
    dotless_domains: frozenset = DEFAULT_DOTLESS_DOMAINS
    argon2: Argon2Params = DEFAULT_ARGON2
    clock: object = field(default=utcnow)
    # Sends confirmation mail (signing.mail.Mailer); None where none is sent.
    mailer: object = None
    confirm_ttl: timedelta = timedelta(days=7)
    resend_interval: timedelta = timedelta(minutes=5)
    # Bounds the Argon2id computations running at once (signing.throttle.TagThrottle); None: no bound.
    throttle: object = None
