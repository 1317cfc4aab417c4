"""Sending confirmation mail (DESIGN §2 threat 4, §6, §10); never keeps an address.

An address reaches this module as an argument, is used for one SMTP
conversation, and is dropped. It is never written to a table, a log line, a
file or an exception: smtplib's own exceptions carry the recipient (for
example ``SMTPRecipientsRefused.recipients``), so every failure is caught
here and replaced by a ``MailError`` with a generic message, raised outside
the ``except`` block so that it does not even chain to the original. A
failure is logged as the exception's class name and nothing else.

Messages are plain text in the request's language, from a clear sender, with
no HTML, no images, no tracking links and no tracking headers.
"""

import logging
import secrets
import smtplib
import socket
import ssl
import threading
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, parseaddr

from flask import has_request_context, render_template, request, url_for
from flask_babel import force_locale, get_locale
from flask_babel import lazy_gettext as _l

from .ledger.errors import MailError
from .web.i18n import localised

log = logging.getLogger("countersign.mail")

BACKENDS = ("smtp", "console")
SECURITY_MODES = ("starttls", "tls", "none")


class MailNotConfigured(MailError):
    """Mail links cannot be built: PUBLIC_URL is not set (outside development)."""


@dataclass(frozen=True, repr=False)
class Message:
    """One outgoing message. Its repr hides the recipient, in case one is ever logged."""

    to: str
    subject: str
    body: str
    language: str

    def __repr__(self):
        return f"Message(subject={self.subject!r}, to=<redacted>)"


class SmtpTransport:
    """Delivers through an SMTP server: implicit TLS, STARTTLS, or plain (tests, local relays)."""

    def __init__(
        self,
        host,
        port,
        security="starttls",
        username=None,
        password=None,
        timeout_seconds=10,
        ssl_context=None,
        deadline_seconds=30,
    ):
        if security not in SECURITY_MODES:
            raise ValueError(f"MAIL_SECURITY must be one of {', '.join(SECURITY_MODES)}, not {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password = username, password
        self.timeout_seconds = timeout_seconds
        self.deadline_seconds = deadline_seconds
        # Certificates and host names are verified; tests pass their own CA here.
        # Built once: loading the system's CA store costs tens of milliseconds.
        if ssl_context is None and security != "none":
            ssl_context = ssl.create_default_context()
        self.ssl_context = ssl_context

    def __repr__(self):
        return f"SmtpTransport({self.host}:{self.port}, {self.security})"

    def deliver(self, envelope_from, recipient, message):
        """Send ``message``; raise anything smtplib or the socket raises (the caller sanitises)."""
        # Made unconnected, so the watchdog runs from the first byte (the greeting) on.
        if self.security == "tls":
            connection = smtplib.SMTP_SSL(timeout=self.timeout_seconds, context=self.ssl_context)
        else:
            connection = smtplib.SMTP(timeout=self.timeout_seconds)
        # The socket timeout bounds each read; this bounds the whole conversation:
        # a server that drips a byte at a time is cut off at the deadline.
        watchdog = threading.Timer(self.deadline_seconds, _cut_off, (connection,))
        watchdog.daemon = True
        watchdog.start()
        try:
            self._converse(connection, envelope_from, recipient, message)
        finally:
            watchdog.cancel()

    def _converse(self, connection, envelope_from, recipient, message):
        # SMTP_SSL checks the host name against the one it was made with.
        connection._host = self.host
        connection.connect(self.host, self.port)
        with connection as smtp:
            if self.security == "starttls":
                smtp.starttls(context=self.ssl_context)
            if self.username:
                smtp.login(self.username, self.password)
            # send_message asks for SMTPUTF8 itself when an address is not ASCII.
            smtp.send_message(message, from_addr=envelope_from, to_addrs=[recipient])


def _cut_off(connection):
    """Shut the socket down under a conversation that overran its deadline: the
    blocked read returns at once and smtplib raises, in the sender's thread."""
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed: the conversation ended on its own


class ConsoleTransport:
    """Prints the message instead of sending it (``signing demo``), without its recipient."""

    def __repr__(self):
        return "ConsoleTransport()"

    def deliver(self, envelope_from, recipient, message):
        headers = [f"{name}: {message[name]}" for name in ("From", "Subject", "Content-Language")]
        headers.insert(1, "To: (the address typed in the form; not shown)")
        rule = "-" * 72
        print(rule, *headers, "", message.get_content().rstrip("\n"), rule, sep="\n", flush=True)


# Neutral and the same for both: a subject or a preview is read by anyone who
# glances at an inbox or a lock screen, so it names no petition and no outcome.
NEUTRAL_SUBJECT = _l("About your request")
SUBJECTS = {"confirm": NEUTRAL_SUBJECT, "already_signed": NEUTRAL_SUBJECT}


class Mailer:
    """Composes the two messages the ledger sends, and hands them to a transport."""

    def __init__(self, transport, sender, public_url="", development=False):
        self.transport = transport
        self.sender = sender
        self.public_url = public_url.rstrip("/")
        self.development = development

    def __repr__(self):
        return f"Mailer({self.transport!r})"

    def prepare(self, to, petition, token, ttl):
        """What the sender needs to mail either message later, built while the request's
        address and language are known (signing/ledger/mailqueue.py seals it at once)."""
        links = {}
        self._guarded(self._links, links, petition, token)
        return {
            "to": to,
            **links,
            "days": max(1, round(ttl.total_seconds() / 86400)),
            "language": str(get_locale() or "en"),
        }

    def _links(self, into, petition, token):
        into["link"] = self._absolute("public.confirm", petition, token)
        into["receipt_link"] = self._absolute("public.receipt", petition, None)

    def send_prepared(self, kind, petition, payload):
        """Send "confirm" (with the link) or "already_signed" (no link that acts); MailError if not sent."""
        # "already_signed" carries a link too: following it gives the owner a new
        # receipt for the signature that counts (issue 16: a lost first answer).
        links = {"link": payload["link"]}
        if kind == "already_signed":
            links["receipt_link"] = payload["receipt_link"]
        self._guarded(self._deliver, payload["to"], kind, petition, payload["language"], payload["days"], links)

    def _absolute(self, endpoint, petition, token):
        values = {"slug": petition.slug} if token is None else {"slug": petition.slug, "token": token}
        return self.link(endpoint, **values)

    def _deliver(self, to, kind, petition, language, days, links):
        with force_locale(language):
            message = Message(
                to=to,
                subject=str(SUBJECTS[kind] % {"title": localised(petition, "title")}),
                body=render_template(f"mail/{kind}.txt", petition=petition, days=days, **links),
                language=language,
            )
        self.transport.deliver(self.envelope_from(), message.to, compose(self.sender, message))

    def link(self, endpoint, **values):
        """An absolute link under PUBLIC_URL: the Host header is the sender's to choose, so never used."""
        path = url_for(endpoint, **values)
        if has_request_context() and request.script_root and path.startswith(request.script_root):
            path = path[len(request.script_root) :]
        if self.public_url:
            return self.public_url + path
        if self.development and has_request_context():
            return request.url_root.rstrip("/") + path
        raise MailNotConfigured("PUBLIC_URL is not set, so no link can be mailed")

    @staticmethod
    def _guarded(action, *args, **kwargs):
        """Run ``action``; turn any failure into a bare MailError, logged by class name only."""
        failure = None
        try:
            action(*args, **kwargs)
        except Exception as error:  # any of them may carry the address: none escapes
            failure = type(error).__name__
        if failure is not None:
            # Raised here, after the except block, so it does not even chain
            # (as __context__) to the original exception and its recipients.
            log.warning("mail not sent: %s", failure)
            raise MailError() from None

    def envelope_from(self):
        return parseaddr(self.sender)[1]


def message_id(sender):
    """``<128 random bits@sender's domain>``: unique, and unlike make_msgid's it carries no
    process id and no time (which would tie mails to a worker and to a moment)."""
    return f"<{secrets.token_hex(16)}@{parseaddr(sender)[1].rpartition('@')[2] or 'localhost'}>"


def compose(sender, message):
    """The MIME message: plain UTF-8 text, a clear sender, nothing that tracks."""
    mime = EmailMessage()
    mime["From"] = sender
    # ledger.deliverable_address has refused every character that would make
    # this more than one plain address; EmailMessage refuses line breaks.
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = message_id(sender)
    # Automatic mail: no out-of-office replies to it (RFC 3834).
    mime["Auto-Submitted"] = "auto-generated"
    mime.set_content(message.body, subtype="plain", charset="utf-8")
    # After set_content, which drops every Content-* header set before it.
    mime["Content-Language"] = "zh-Hant" if message.language == "zh_Hant" else "en"
    return mime


def from_config(config):
    """The mailer the settings describe; ValueError for a setting that cannot work."""
    backend = config["MAIL_BACKEND"]
    if backend not in BACKENDS:
        raise ValueError(f"MAIL_BACKEND must be one of {', '.join(BACKENDS)}, not {backend!r}")
    public_url = config["PUBLIC_URL"]
    if public_url and not public_url.startswith(("https://", "http://")):
        raise ValueError("PUBLIC_URL must start with https:// (for example https://petitions.example.org)")
    if "@" not in parseaddr(config["MAIL_FROM"])[1]:
        raise ValueError("MAIL_FROM must be an address, like 'Countersign <petitions@example.org>'")
    if backend == "console":
        transport = ConsoleTransport()
    else:
        transport = SmtpTransport(
            config["MAIL_HOST"],
            config["MAIL_PORT"],
            config["MAIL_SECURITY"],
            config["MAIL_USERNAME"],
            config["MAIL_PASSWORD"],
            config["MAIL_TIMEOUT_SECONDS"],
            deadline_seconds=config["MAIL_DEADLINE_SECONDS"],
        )
    mailer = Mailer(transport, config["MAIL_FROM"], public_url, development=config["DEVELOPMENT"])
    if not public_url and not config["DEVELOPMENT"]:
        log.warning("PUBLIC_URL is not set: confirmation mail cannot be sent until it is")
    return mailer
