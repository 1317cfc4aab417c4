"""What every ledger call is given: keys, settings, clock, mailer, tag throttle.

Functions take a ``Services`` rather than reading globals, so tests can
inject time and the CLI and the web share one code path.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher

from crypto.normalise import DEFAULT_DOTLESS_DOMAINS
from crypto.tags import DEFAULT_ARGON2, Argon2Params


def utcnow():
    return datetime.now(UTC)


@dataclass(frozen=True)
class Services:
    keyring: object
    publish_interval: timedelta = timedelta(minutes=10)
    # True where a background thread publishes on schedule, so requests need not check.
    scheduled_publishing: bool = False
    # Fewest new log entries a batch may have before close (THREAT_MODEL.md, "batches").
    min_batch: int = 10
    dotless_domains: frozenset = DEFAULT_DOTLESS_DOMAINS
    argon2: Argon2Params = DEFAULT_ARGON2
    clock: object = field(default=utcnow)
    # Sends confirmation mail (signing.mail.Mailer); None where none is sent.
    mailer: object = None
    confirm_ttl: timedelta = timedelta(days=7)
    resend_interval: timedelta = timedelta(minutes=5)
    # Bounds the Argon2id computations running at once (ledger.throttle.TagThrottle); None: no bound.
    throttle: object = None
    # Checkpoints (ledger.checkpoints): the origin prefix and the witnesses asked to cosign.
    log_origin: str = "countersign.invalid"
    witnesses: tuple = ()
    witness_timeout: float = 5.0
    # Hashes and checks organiser passwords (argon2-cffi), at the configured cost.
    password_hasher: PasswordHasher = field(default_factory=PasswordHasher)

    def naive_now(self):
        """Now, as naive UTC: how the database stores times."""
        return self.clock().replace(tzinfo=None)
