"""The one logging configuration: the app, the CLI and gunicorn (DESIGN §9).

No log line may carry a client address, a user agent, an identity field, a
receipt code or a confirmation token, and no error report carries a request
body. Three layers keep it so:

1. The code never logs them. The last-resort error handler logs an
   exception's class and endpoint (web/errors.py), mail failures a class name
   (mail.py); nothing logs a request, a form or a row.
2. Every log record, whichever logger made it and whichever handler it goes
   to (the operator's syslog or journald handler included), is scrubbed as it
   is created, by a log record factory that ``install`` puts in place:
   anything shaped like an IP address, an email address, a receipt code or a
   confirmation link's token is replaced, and records that carry a user agent,
   or peewee's SQL with its parameters (tags, digests), are withheld whole.
3. The handlers configured here (``LOGGING``, used by the CLI and by gunicorn
   as ``logconfig_dict``) also drop the withheld records (``PrivacyFilter``).

Log lines carry a level, a logger name and a message: no time stamp (the
journal or the process supervisor adds one), never a client address.

There is no access log: gunicorn's is off (``gunicorn_conf.accesslog``,
and its logger has no handler here), and the development server's request
line is written by ``cli.QuietRequestHandler`` without the address.
"""

import logging
import logging.config
import re

from gunicorn.glogging import Logger as GunicornLogger

LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"

# IPv4 dotted quads and IPv6 in its usual spellings (at least two colons).
# Overmatching (a clock time such as 12:30:45, the server's own listening
# address) only costs a redacted word.
_ADDRESS_RE = re.compile(
    r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"
    r"|(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{1,4})?(?![\w:]|\.\d)"
)
REDACTED = "[address]"


def redact(text):
    return _ADDRESS_RE.sub(REDACTED, text)


class RedactAddresses(logging.Filter):
    """Replace anything shaped like an IP address in a record's message."""

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_EMAIL_RE = re.compile(r"[^\s@<>()\[\],;:\"']+@[^\s@<>()\[\],;:\"']+\.[^\s@<>()\[\],;:\"']+")
_RECEIPT_RE = re.compile(r"\b[A-Za-z2-7]{4}(?:-[A-Za-z2-7]{2,4}){6}\b|\b[A-Z2-7]{26}\b")
_TOKEN_PATH_RE = re.compile(r"(/confirm/)[^\s/?#'\"]+")
_USER_AGENT_RE = re.compile(
    r"user[-_ ]?agent"
    r"|\b(?:mozilla|applewebkit|gecko|chrome|safari|firefox|opera|edg|curl|wget|python-requests|python-urllib"
    r"|go-http-client|okhttp|httpie|aiohttp|werkzeug)/\d",
    re.IGNORECASE,
)
# Attributes some libraries attach to records (``extra=``) that hold who sent a request.
_CLIENT_ATTRIBUTES = ("remote_addr", "client_addr", "client_ip", "ip", "user_agent", "headers", "environ")
_WITHHELD = "log record withheld: %s"
_SCRUBBED = "_countersign_kept"


def clean_text(text):
    """``text`` with addresses, emails, receipt codes and confirmation tokens replaced."""
    text = redact(text)
    text = _EMAIL_RE.sub("[email]", text)
    text = _RECEIPT_RE.sub("[receipt]", text)
    return _TOKEN_PATH_RE.sub("\\1…", text)  # as cli.redact_tokens writes it


def _withhold(record, reason):
    record.msg, record.args = _WITHHELD, (reason,)
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    setattr(record, _SCRUBBED, False)
    return False


def scrub(record):
    """Clean ``record`` in place; False if it had to be withheld whole. Idempotent."""
    # Checked every time: ``extra=`` attributes arrive after the record is created.
    if any(name in record.__dict__ for name in _CLIENT_ATTRIBUTES):
        return _withhold(record, "it carried request details")
    kept = getattr(record, _SCRUBBED, None)
    if kept is not None:
        return kept
    if record.name.split(".")[0] == "peewee" and record.levelno < logging.WARNING:
        return _withhold(record, "SQL with its parameters")
    try:
        message = record.getMessage()
    except Exception:  # a malformed call; never let logging itself fail a request
        return _withhold(record, "its message could not be formatted")
    if _USER_AGENT_RE.search(message):
        return _withhold(record, "it carried a user agent")
    cleaned = clean_text(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = clean_text(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = clean_text(record.stack_info)
    setattr(record, _SCRUBBED, True)
    return True


class PrivacyFilter(RedactAddresses):
    """For handlers: scrub, and drop what ``scrub`` withheld."""

    def filter(self, record):
        return scrub(record)


def install():
    """Scrub every log record of this process as it is created (idempotent)."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "countersign_scrubs", False):
        return

    def scrubbed_record(*args, **kwargs):
        record = previous(*args, **kwargs)
        scrub(record)
        return record

    scrubbed_record.countersign_scrubs = True
    logging.setLogRecordFactory(scrubbed_record)


def logging_config(level="INFO"):
    """A ``logging.config.dictConfig`` dictionary: stderr, one format, filtered, no access log."""
    level = logging.getLevelName(level) if isinstance(level, int) else level
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": PrivacyFilter}},
        "formatters": {"plain": {"format": LOG_FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "plain",
                "filters": ["redact"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            # An access log is a list of who did what when: never written.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            # peewee logs SQL with its parameters (tags, digests) at DEBUG.
            "peewee": {"level": "WARNING"},
        },
    }


# For gunicorn (``logconfig_dict``) and anything else that takes a dictConfig.
LOGGING = logging_config("INFO")


def gunicorn_logconfig(level="INFO"):
    return logging_config(level)


class NoAccessLineLogger(GunicornLogger):
    """gunicorn's logger, building no access-log line unless an access log was asked for.

    gunicorn builds every request's line whenever logging is configured by a
    dict (as ours is), to hand it to a logger that here writes nothing.
    """

    @property
    def access_log_enabled(self):
        return bool(self.cfg.accesslog)


def configure(level=logging.INFO):
    """Set up logging for a command-line process.

    Where the process has handlers already (an embedding host, pytest), they
    and the root level are kept (as logging.basicConfig would), and the
    handlers are given the filter.
    """
    install()
    root = logging.getLogger()
    if not root.handlers:
        logging.config.dictConfig(logging_config(level))
        return
    logging.getLogger("peewee").setLevel(logging.WARNING)
    for handler in root.handlers:
        if not any(isinstance(f, PrivacyFilter) for f in handler.filters):
            handler.addFilter(PrivacyFilter())


def init_app(app):
    """What ``create_app`` needs: scrubbing on, whoever configured the handlers."""
    install()
    logging.getLogger("peewee").setLevel(logging.WARNING)
    if not any(isinstance(f, PrivacyFilter) for f in app.logger.filters):
        app.logger.addFilter(PrivacyFilter())
