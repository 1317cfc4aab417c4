"""Configuration: defaults here, then ``instance/config.py``, then ``SIGNING_*``.

Every setting an operator may change is a module-level constant below; the
environment variable ``SIGNING_<NAME>`` overrides ``<NAME>`` and is parsed to
the type of the default, so a typo fails at start-up instead of at 3 a.m.
"""

import os
from pathlib import Path

# Where the database and the key files live; put it on an encrypted volume.
INSTANCE_PATH = "instance"
DATABASE_URL = ""  # empty: sqlite file countersign.db in INSTANCE_PATH
MASTER_KEY_FILE = ""  # empty: master.key in INSTANCE_PATH
LOG_KEY_FILE = ""  # empty: log.key in INSTANCE_PATH

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


def _parse(name, default, text):
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        raise ValueError(f"{_PREFIX}{name} must be true or false")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError(f"{_PREFIX}{name} must be a whole number") from None
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

    instance_config = instance / "config.py"
    if instance_config.is_file():
        namespace = {}
        # The operator's own file, as trusted as this code: exec is the point.
        code = compile(instance_config.read_text(), str(instance_config), "exec")
        exec(code, namespace)  # noqa: S102  # nosec B102
        settings.update({k: v for k, v in namespace.items() if k.isupper()})

    for name, default in defaults().items():
        if name != "INSTANCE_PATH" and _PREFIX + name in environ:
            settings[name] = _parse(name, default, environ[_PREFIX + name])
    settings.update(overrides or {})

    settings["DATABASE_URL"] = settings["DATABASE_URL"] or f"sqlite:///{instance / 'countersign.db'}"
    settings["MASTER_KEY_FILE"] = settings["MASTER_KEY_FILE"] or str(instance / "master.key")
    settings["LOG_KEY_FILE"] = settings["LOG_KEY_FILE"] or str(instance / "log.key")
    return settings
