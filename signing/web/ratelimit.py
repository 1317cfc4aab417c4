"""Rate limits that never store a client address (DESIGN §9).

Flask-Limiter counts requests per client, and a counter needs a key. Here the
key is HMAC-SHA256 of the client address under a random 32-byte key that is
made in memory, never written anywhere, and replaced at the start of every UTC
day: the limiter's storage holds only those MACs, and once the day's key is
gone not even this process can tell which address a stored MAC stood for.

IPv6 clients are keyed by their /64, since one subscriber usually holds a
whole /64 and could otherwise take a new address per request.

Limits apply per process: the storage is memory, so gunicorn's N workers
each keep their own counts (a client may get up to N times a limit, spread
over workers). They are checked in ``before_request``, before CSRF, form
parsing and anything else, so a refused request never reaches an Argon2id
computation. What they cannot do is tell people apart behind one address
(a household, a venue's Wi-Fi, a Tor exit, and every visitor of an onion
service run by the same tor daemon): THREAT_MODEL.md weighs that.
"""

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import time
from datetime import UTC, datetime

from flask import current_app, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from .errors import render_error

# endpoint: (setting holding its limits, methods counted). Reading a page is
# free; what is counted is what makes work or guesses.
LIMITED_ENDPOINTS = {
    "public.sign": ("RATE_LIMIT_SIGN", frozenset({"POST"})),
    "public.confirm": ("RATE_LIMIT_CONFIRM", frozenset({"GET", "POST"})),
    "public.receipt": ("RATE_LIMIT_RECEIPT", frozenset({"POST"})),
    "public.receipt_proof": ("RATE_LIMIT_RECEIPT", frozenset({"POST"})),
    "public.withdraw": ("RATE_LIMIT_WITHDRAW", frozenset({"POST"})),
    # Switching language on a form page may show a receipt's status again.
    "refill.switch": ("RATE_LIMIT_RECEIPT", frozenset({"POST"})),
    "organiser.login": ("RATE_LIMIT_LOGIN", frozenset({"POST"})),
    "organiser.two_factor_enrol": ("RATE_LIMIT_LOGIN", frozenset({"POST"})),
    "organiser.two_factor_disable": ("RATE_LIMIT_LOGIN", frozenset({"POST"})),
}
KEY_BYTES = 32
# 128 bits of the MAC: as good as all of it for telling clients apart.
KEY_HEX_CHARS = 32
_EXTENSION = "countersign.limiter"
ADDRESS_KEYS_EXTENSION = "countersign.address_keys"
_HEX_RUN = re.compile(r"[0-9a-f]{16,}")


class WithholdClientKeys(logging.Filter):
    """Flask-Limiter logs every refusal with the client's key ("ratelimit 10 per 1 minute
    (LIMITER/countersign/3c550a67…) exceeded"): a MAC of the address, the same all day, so a
    pseudonym of the client. Every argument of its records loses such runs of hex."""

    def filter(self, record):
        if isinstance(record.args, tuple):
            record.args = tuple(
                arg if isinstance(arg, int | float) or arg is None else _HEX_RUN.sub("…", str(arg))
                for arg in record.args
            )
        record.msg = _HEX_RUN.sub("…", str(record.msg))
        return True


def _withhold_client_keys():
    logger = logging.getLogger("flask-limiter")
    if not any(isinstance(f, WithholdClientKeys) for f in logger.filters):
        logger.addFilter(WithholdClientKeys())


def utcnow():
    return datetime.now(UTC)


def client_network(address):
    """What identifies a client for counting: an IPv4 address, or an IPv6 address's /64."""
    try:
        parsed = ipaddress.ip_address(address or "")
    except ValueError:
        return address or ""
    if parsed.version == 6:
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


class AddressKeys:
    """Turns a client address into a MAC under a key that lives only here and changes daily."""

    def __init__(self, clock=utcnow):
        self._clock = clock
        self._lock = threading.Lock()
        self._day = None
        self._key = None

    def __repr__(self):
        return "AddressKeys(<key in memory only>)"

    def _current_key(self):
        today = self._clock().date()
        with self._lock:
            if today != self._day:
                # The old key is dropped here: yesterday's MACs are unlinkable from now on.
                self._key, self._day = secrets.token_bytes(KEY_BYTES), today
            return self._key

    def __call__(self, address):
        mac = hmac.new(self._current_key(), client_network(address).encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()[:KEY_HEX_CHARS]


def limit_for_request():
    """The limits that apply to this request ("" for none), read from the settings."""
    rule = LIMITED_ENDPOINTS.get(request.endpoint or "")
    if rule is None or request.method not in rule[1]:
        return ""
    return current_app.config[rule[0]]


def limiter_of(app):
    return app.extensions[_EXTENSION]


def init_app(app, address_keys=None):
    """Attach a limiter of this app's own (its storage, its key). Call before CSRF is set up.

    A limit that does not parse is a ValueError here, at start-up, not a 500 on the first request.
    """
    for setting in sorted({setting for setting, _methods in LIMITED_ENDPOINTS.values()}):
        try:
            parse_many(app.config[setting])
        except ValueError:
            raise ValueError(f"{setting} must be like '10/minute;120/hour', not {app.config[setting]!r}") from None
    keys = address_keys or AddressKeys()
    _withhold_client_keys()
    app.extensions[ADDRESS_KEYS_EXTENSION] = keys
    limiter = Limiter(
        key_func=lambda: keys(request.remote_addr),
        default_limits=[limit_for_request],
        storage_uri="memory://",
        strategy="fixed-window",
        key_prefix="countersign",
        enabled=app.config["RATE_LIMITS_ENABLED"],
        headers_enabled=False,
    )
    limiter.init_app(app)
    app.extensions[_EXTENSION] = limiter

    @app.errorhandler(RateLimitExceeded)
    def _too_many(_error):
        body, status = render_error(429)
        current = limiter.current_limit
        wait = max(1, current.reset_at - int(time.time())) if current is not None else 60
        return body, status, {"Retry-After": str(wait)}

    return limiter
