"""Address redaction for log lines; the configuration itself is in logging_setup.py.

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
    """Set up logging for a command-line process (logging_setup.configure, the one configuration)."""
    from .logging_setup import configure as configure_logging

    configure_logging(level)


def gunicorn_logconfig(level="INFO"):
    """``logconfig_dict`` for gunicorn: logging_setup's one configuration. No access log."""
    from .logging_setup import logging_config

    return logging_config(level)
