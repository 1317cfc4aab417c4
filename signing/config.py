"""Configuration: defaults here, then ``instance/config.py``, then ``SIGNING_*``.

Every setting an operator may change is a module-level constant below; the
environment variable ``SIGNING_<NAME>`` overrides ``<NAME>`` and is parsed to
the type of the default, so a typo fails at start-up instead of at 3 a.m.
A value of the wrong type in ``instance/config.py``, a file that does not
run, or a database URL of no known kind is a ``ConfigError``: one line that
names the setting or file and what to do.
"""

import os
from pathlib import Path
from urllib.parse import urlsplit

import flask

# Where the database and the key files live; put it on an encrypted volume.
INSTANCE_PATH = "instance"
DATABASE_URL = ""  # empty: sqlite file countersign.db in INSTANCE_PATH
MASTER_KEY_FILE = ""  # empty: master.key in INSTANCE_PATH
LOG_KEY_FILE = ""  # empty: log.key in INSTANCE_PATH

# Who runs this instance, shown on the privacy page ("What we keep…"): a
# name and a way to reach them (an address or a URL). Both are public.
OPERATOR_NAME = ""
OPERATOR_CONTACT = ""
# The operator's own privacy notice (the legal one), linked from that page.
PRIVACY_NOTICE_URL = ""

# Seconds between two batches appended to a petition's log; 0 appends at once.
PUBLISH_INTERVAL_SECONDS = 600
# Fewest new entries (signatures and withdrawals) a batch may hold before the
# petition closes: each entry hides among at least this many (THREAT_MODEL.md).
MIN_BATCH = 10

# Email domains whose mailboxes ignore dots in the local part (besides Gmail).
DOTLESS_EMAIL_DOMAINS = ""

# Where the site is reached, e.g. "https://petitions.example.org": the base of
# links in mail (never taken from the request's Host header). Empty works only
# in development, where the request's own address is used.
PUBLIC_URL = ""
# Each petition's log is named "<LOG_ORIGIN>/<slug>" in its C2SP checkpoints
# (and its verifier key); empty: PUBLIC_URL without its scheme, or
# "countersign.invalid" when that is empty too. Never change it once published:
# witnesses know a log by this name.
LOG_ORIGIN = ""
# Witnesses (c2sp.org/tlog-witness) asked to cosign every new checkpoint, one
# per line: "<vkey> <submission URL prefix> <name shown to the public>", e.g.
# "witness.example/w1+6a1bb6c5+BGx… https://witness.example/w1 Example Witness".
WITNESSES = ""
# How long the log waits for one witness before publishing without it.
WITNESS_TIMEOUT_SECONDS = 5
# A confirmation link works this long; a pending signature is deleted after it.
CONFIRM_TOKEN_TTL_SECONDS = 7 * 24 * 3600
# At most one confirmation mail per pending signature in this many seconds.
CONFIRM_RESEND_SECONDS = 300

# Outgoing mail: "smtp", or "console" to print messages instead (the demo).
MAIL_BACKEND = "smtp"
MAIL_HOST = "localhost"
MAIL_PORT = 587
MAIL_SECURITY = "starttls"  # "starttls", "tls" (implicit TLS, usually port 465) or "none"
MAIL_USERNAME = ""  # empty: no SMTP login
MAIL_PASSWORD = ""  # nosec B105 -- no password by default; set SIGNING_MAIL_PASSWORD
MAIL_FROM = "Countersign <countersign@localhost>"
MAIL_TIMEOUT_SECONDS = 10
# The whole SMTP conversation, connect to QUIT: a server that drips bytes is cut off.
MAIL_DEADLINE_SECONDS = 30
# Mail and scheduled batches go out from a thread in each worker (signing/background.py);
# off, they go only when `signing send-mail` / `signing publish` run (cron).
BACKGROUND_SENDER = True

# Argon2id cost for the tags of petitions created from now on (stored with
# each petition, so changing these never touches existing tags).
ARGON2_TIME_COST = 2
ARGON2_MEMORY_KIB = 19456
ARGON2_PARALLELISM = 1
# Argon2id cost of organiser passwords (argon2-cffi's RFC 9106 low-memory
# profile); a hash made with other costs is upgraded at the next sign-in.
PASSWORD_HASH_TIME_COST = 3
PASSWORD_HASH_MEMORY_KIB = 65536
PASSWORD_HASH_PARALLELISM = 4

# Seconds each worker may serve the public petition pages from memory (they
# already say max-age=10 to every cache); 0 turns the cache off.
PAGE_CACHE_SECONDS = 5
# Audit bundles each worker process sends at once (web/bundlefiles.py); more get a 503 with Retry-After.
AUDIT_BUNDLE_READERS = 1

# Largest request body accepted; a signature form is well under 4 KiB.
MAX_CONTENT_LENGTH = 64 * 1024
# A CSV of paper signatures (about 100,000 rows); held in memory only.
MAX_UPLOAD_BYTES = 8 * 1024 * 1024
# Breakdowns show cells under this as "fewer than N".
SMALL_CELL_THRESHOLD = 5
# Organiser sessions end after this long without a request.
ORGANISER_IDLE_MINUTES = 30
DISPLAY_NAMES_PER_PAGE = 50

# Development turns off Secure cookies and HSTS so http://127.0.0.1 works.
DEVELOPMENT = False
# Trusted reverse proxies in front of the app (for ProxyFix); 0 = none.
PROXY_COUNT = 0
# Where the same site is reachable as a Tor onion service, e.g.
# "http://xyz….onion": sent as Onion-Location (plus the request's path) so
# Tor Browser offers it. Empty: no header.
ONION_LOCATION = ""

# Argon2id tags computed at once in one process (0 = one per core); a request
# that finds them all busy waits up to TAG_WAIT_SECONDS, then gets a 503.
TAG_CONCURRENCY = 0
TAG_WAIT_SECONDS = 2
# A folder of lock files that bounds the tags of every process using it to one
# per core at once (ledger/throttle.py). `signing serve` makes one per server;
# empty: no bound beyond each process's own.
TAG_SLOTS_DIR = ""

# Per client address (as a keyed hash, never stored), in each process; limits
# syntax: "10/minute;120/hour". Everyone behind one NAT or Tor exit shares a
# budget, and so does every onion-service visitor (they all arrive from the
# tor daemon): see THREAT_MODEL.md before lowering these.
RATE_LIMITS_ENABLED = True
RATE_LIMIT_SIGN = "10/minute;120/hour"
RATE_LIMIT_CONFIRM = "20/minute;200/hour"
RATE_LIMIT_RECEIPT = "20/minute;200/hour"
RATE_LIMIT_WITHDRAW = "10/minute;60/hour"
RATE_LIMIT_LOGIN = "10/minute;30/hour"

_PREFIX = "SIGNING_"
DATABASE_SCHEMES = ("sqlite:///", "postgresql://", "postgres://")


class ConfigError(ValueError):
    """A setting or the instance's config file that cannot work; the message says which and why."""


def _parse(name, default, text):
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ConfigError(f"{_PREFIX}{name} must be true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{_PREFIX}{name} must be a whole number, not {text!r}") from None
    return text


def defaults():
    return {name: value for name, value in globals().items() if name.isupper() and not name.startswith("_")}


def load(overrides=None, environ=None):
    """Return the settings: defaults < instance/config.py < environment < overrides."""
    environ = os.environ if environ is None else environ
    settings = defaults()
    settings["INSTANCE_PATH"] = environ.get(_PREFIX + "INSTANCE_PATH", settings["INSTANCE_PATH"])
    if overrides and "INSTANCE_PATH" in overrides:
        settings["INSTANCE_PATH"] = overrides["INSTANCE_PATH"]
    instance = Path(settings["INSTANCE_PATH"]).resolve()
    settings["INSTANCE_PATH"] = str(instance)

    settings.update(_instance_file(instance / "config.py"))

    for name, default in defaults().items():
        if name != "INSTANCE_PATH" and _PREFIX + name in environ:
            settings[name] = _parse(name, default, environ[_PREFIX + name])
    settings.update(overrides or {})

    settings["DATABASE_URL"] = settings["DATABASE_URL"] or f"sqlite:///{instance / 'countersign.db'}"
    if not settings["DATABASE_URL"].startswith(DATABASE_SCHEMES):
        raise ConfigError(
            "DATABASE_URL must start with sqlite:/// (a file) or postgresql:// (user@host/database), "
            f"not {settings['DATABASE_URL'].partition('://')[0]!r}"
        )
    try:
        _port = urlsplit(settings["DATABASE_URL"]).port  # parsing it raises for "host:abc"
    except ValueError:
        raise ConfigError("DATABASE_URL has a port that is not a number between 0 and 65535") from None
    settings["MASTER_KEY_FILE"] = settings["MASTER_KEY_FILE"] or str(instance / "master.key")
    settings["LOG_KEY_FILE"] = settings["LOG_KEY_FILE"] or str(instance / "log.key")
    return settings


_KINDS = {bool: "true or false (True/False)", int: "a whole number", str: "a string in quotes"}


def _instance_file(path):
    """The settings in the operator's ``instance/config.py``, each checked against its default's type."""
    if not path.is_file():
        return {}
    loaded = flask.Config(str(path.parent))
    try:
        # The operator's own file, as trusted as this code: running it is the point.
        loaded.from_pyfile(str(path))
    except SyntaxError as error:
        raise ConfigError(f"{path}, line {error.lineno}: {error.msg}; fix the file's Python syntax") from None
    except Exception as error:  # noqa: BLE001 -- whatever the operator's file raises, say so in one line
        raise ConfigError(f"{path} fails when run: {type(error).__name__}: {error}") from None
    known = defaults()
    for name, value in loaded.items():
        if name in known and not _same_kind(value, known[name]):
            want = _KINDS[type(known[name])]
            raise ConfigError(f"{path}: {name} must be {want}, like the default {known[name]!r}; not {value!r}")
    return dict(loaded)


def _same_kind(value, default):
    if isinstance(default, bool) or isinstance(value, bool):
        return type(value) is type(default)
    return isinstance(value, type(default))
