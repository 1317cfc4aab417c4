"""One logging set-up for every process: the CLI, the development server, gunicorn.

Log lines carry a level, a logger name and a message: no time stamp (the
journal or the process supervisor adds one), never a client address. The
application itself never logs an address; ``RedactAddresses`` is the belt to
those braces, for what third-party code (gunicorn, werkzeug) might log, such
as gunicorn's "Invalid request from ip=…" at debug level.
"""

import logging
import re

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


def configure(level=logging.INFO):
    """Set up the root logger for a command-line process."""
    logging.basicConfig(level=level, format=LOG_FORMAT)
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactAddresses) for f in handler.filters):
            handler.addFilter(RedactAddresses())


def gunicorn_logconfig(level="INFO"):
    """``logconfig_dict`` for gunicorn: the same format on stderr, addresses redacted,
    gunicorn's own error log and the application's loggers alike. No access log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactAddresses}},
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
            # Never written: accesslog is None. Kept quiet even if someone turns it on.
            "gunicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # peewee logs SQL with its parameters (tags, receipt digests) at DEBUG.
            "peewee": {"level": "WARNING"},
        },
    }
