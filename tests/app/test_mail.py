"""signing/mail.py on its own: the SMTP transports, the console, failures that
name no one, and settings that cannot work refused at start-up."""

import datetime
import ipaddress
import ssl
import traceback
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from helpers import POSTGRES_URL, PUBLIC_URL, Mailbox, Signer, free_port, make_petition, reset_postgres

from signing import mail
from signing.ledger.errors import MailError
from signing.mail import ConsoleTransport, Mailer, SmtpTransport

ADDRESS = "Secret.Person+petition@example.org"
TOKEN = "T" * 42 + "A"


@pytest.fixture
def certificate(tmp_path):
    """A self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def start_server(**options):
    handler = Mailbox()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **options)
    controller.start()
    return controller, handler


def accept_user(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (b"mailer", b"s3cret")
    return AuthResult(success=ok)


def mailer_for(transport):
    return Mailer(transport, "Countersign <petitions@example.org>", PUBLIC_URL)


def send_one(app, petition, transport, to=ADDRESS, kind="confirm"):
    """Prepare in a request (as sign_online does), send later (as the outbox sender does)."""
    mailer = mailer_for(transport)
    with app.test_request_context("/p/test/sign", method="POST"):
        payload = mailer.prepare(to, petition, TOKEN, timedelta(days=7))
    with app.test_request_context():
        mailer.send_prepared(kind, petition, payload)


def test_starttls_with_login(app, petition, certificate):
    server_context, client_context = certificate
    controller, inbox = start_server(
        tls_context=server_context, require_starttls=True, authenticator=accept_user, auth_require_tls=True
    )
    try:
        transport = SmtpTransport("127.0.0.1", controller.port, "starttls", "mailer", "s3cret", 5, client_context)
        send_one(app, petition, transport)
    finally:
        controller.stop()
    (delivery,) = inbox.deliveries
    assert delivery.recipients == [ADDRESS]
    assert delivery.link == f"{PUBLIC_URL}/p/test/confirm/{TOKEN}"


def test_implicit_tls(app, petition, certificate):
    server_context, client_context = certificate
    controller, inbox = start_server(ssl_context=server_context)
    try:
        send_one(
            app,
            petition,
            SmtpTransport("127.0.0.1", controller.port, "tls", timeout_seconds=5, ssl_context=client_context),
        )
    finally:
        controller.stop()
    assert len(inbox.deliveries) == 1


def test_untrusted_certificate_is_a_failure(app, petition, certificate, caplog):
    server_context, _ = certificate
    controller, inbox = start_server(tls_context=server_context, require_starttls=True)
    try:
        with pytest.raises(MailError):
            send_one(app, petition, SmtpTransport("127.0.0.1", controller.port, "starttls", timeout_seconds=5))
    finally:
        controller.stop()
    assert not inbox.deliveries
    assert "mail not sent: SSLCertVerificationError" in caplog.text


def test_wrong_password_is_a_failure(app, petition, certificate):
    server_context, client_context = certificate
    controller, _ = start_server(tls_context=server_context, require_starttls=True, authenticator=accept_user)
    try:
        transport = SmtpTransport("127.0.0.1", controller.port, "starttls", "mailer", "wrong", 5, client_context)
        with pytest.raises(MailError):
            send_one(app, petition, transport)
    finally:
        controller.stop()


def test_failure_names_no_one_and_chains_to_nothing(app, petition, mailbox, smtp_server, caplog):
    mailbox.refused.add(ADDRESS)
    with pytest.raises(MailError) as caught:
        send_one(app, petition, SmtpTransport("127.0.0.1", smtp_server.port, "none", timeout_seconds=5))
    error = caught.value
    # smtplib's SMTPRecipientsRefused held the address; nothing of it is left.
    assert error.__cause__ is None and error.__context__ is None
    text = "".join(traceback.format_exception(error)) + str(error) + repr(error) + caplog.text
    assert "secret.person" not in text.lower()
    assert "mail not sent: SMTPRecipientsRefused" in caplog.text


def test_non_ascii_address_is_sent_with_smtputf8(app, petition, mailbox, smtp_server):
    transport = SmtpTransport("127.0.0.1", smtp_server.port, "none", timeout_seconds=5)
    send_one(app, petition, transport, to="陳大文@例子.香港", kind="already_signed")
    assert mailbox.last().recipients == ["陳大文@例子.香港"]
    assert "already been used to sign it" in mailbox.last().body


def test_console_prints_the_message_and_link_but_not_the_address(app, petition, capsys):
    send_one(app, petition, ConsoleTransport())
    printed = capsys.readouterr().out
    assert f"{PUBLIC_URL}/p/test/confirm/{TOKEN}" in printed
    assert "Subject: About your request" in printed
    assert "secret.person" not in printed.lower()


def test_message_repr_hides_the_recipient():
    message = mail.Message(to=ADDRESS, subject="Hello", body="…", language="en")
    assert "secret" not in repr(message).lower() and "secret" not in str(message).lower()


@pytest.mark.parametrize(
    "setting, value, complaint",
    [
        ("MAIL_BACKEND", "carrier-pigeon", "MAIL_BACKEND"),
        ("MAIL_SECURITY", "ssl", "MAIL_SECURITY"),
        ("PUBLIC_URL", "petitions.example.org", "PUBLIC_URL"),
        ("MAIL_FROM", "Countersign", "MAIL_FROM"),
    ],
)
def test_settings_that_cannot_work_are_refused_at_start(app_config, setting, value, complaint):
    with pytest.raises(ValueError, match=complaint):
        mail.from_config({**_defaults(app_config), setting: value})


def _defaults(app_config):
    from signing import config

    return config.load(app_config)


def test_demo_prints_mail_to_the_console(tmp_path, monkeypatch):
    from signing import cli

    served = {}
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)  # no petitions left by earlier tests, wrapped under their master keys
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(tmp_path / "demo-instance"))
    monkeypatch.delenv("SIGNING_MAIL_BACKEND", raising=False)
    monkeypatch.setattr(cli, "run_simple", lambda host, port, app, **kw: served.update(app=app, handler=kw))
    result = CliRunner().invoke(cli.main, ["demo", "--port", "5999"])
    assert result.exit_code == 0, result.output
    assert isinstance(served["app"].extensions["countersign"].mailer.transport, ConsoleTransport)
    assert served["handler"]["request_handler"] is cli.QuietRequestHandler


def test_subjects_and_previews_are_neutral_and_the_same(browser, services, mailbox):
    """An inbox list or a lock screen shows the subject and first lines: they name no petition, no outcome."""
    make_petition(services, "secret", title="Free the Hong Kong 47")
    browser.sign_and_confirm("secret", Signer())
    browser.sign("secret", Signer())  # again: the "already signed" message
    first, again = mailbox.deliveries[-2:]
    assert first.subject == again.subject == "About your request"
    previews = [message.body[:200] for message in (first, again)]
    assert previews[0] == previews[1]
    assert all("Hong Kong" not in preview and "already" not in preview for preview in previews)


def test_message_id_is_random_with_no_process_or_time_in_it(app, petition, mailbox, smtp_server):
    import re

    transport = SmtpTransport("127.0.0.1", smtp_server.port, "none", timeout_seconds=5)
    for _ in range(2):
        send_one(app, petition, transport, to="someone@example.org", kind="already_signed")
    ids = [delivery.message["Message-ID"] for delivery in mailbox.deliveries[-2:]]
    assert ids[0] != ids[1]
    for message_id in ids:
        # 128 random bits and nothing else: make_msgid's was <time.pid.random@host>.
        assert re.fullmatch(r"<[0-9a-f]{32}@example\.org>", message_id), message_id
