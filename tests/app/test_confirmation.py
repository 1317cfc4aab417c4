"""Email confirmation of online signatures (issue 5), against a real SMTP server.

Every test here ends with the privacy search of test_privacy.py: no spelling
of any signer's address, name or postcode, and no confirmation token, in any
byte of the instance folder (database, WAL, keys) or in anything logged.
"""

import base64
import dataclasses
import hashlib
import logging
import re
import socket
import time

import pytest
from click.testing import CliRunner
from helpers import (
    POSTGRES_URL,
    PUBLIC_URL,
    RECEIPT_RE,
    Clock,
    Signer,
    assert_no_trace,
    captured_logs,
    free_port,
    receipt_from,
)

from signing import ledger, mail
from signing.cli import main as cli
from signing.ledger import mailqueue
from signing.models import COUNTED, PENDING, Inbox, Outbox, Petition, Signature

CLARA = Signer()
WONG = Signer(name="Wong Tai Sin", postcode="S10 2TN", email="Tai.Sin+petition@Example.NET")
ALL_SIGNERS = [CLARA, WONG]


@pytest.fixture(autouse=True)
def nothing_kept_afterwards(other_process, instance_path, caplog, capfd, mailbox):
    """After every test: the privacy search, over everything the test did."""
    caplog.set_level(logging.DEBUG)
    yield
    assert_no_trace(instance_path, captured_logs(caplog, capfd), ALL_SIGNERS, mailbox.tokens)


@pytest.fixture
def clock(app, services):
    """The ledger's clock, under the test's control."""
    clock = Clock(services.clock())
    app.extensions["countersign"] = dataclasses.replace(services, clock=clock)
    return clock


def use_mail_settings(app, **settings):
    """Swap the mailer for one built from the app's settings with ``settings`` changed."""
    current = app.extensions["countersign"]
    app.extensions["countersign"] = dataclasses.replace(current, mailer=mail.from_config({**app.config, **settings}))


def stored():
    """Submissions waiting for their link to be followed, and counted signatures."""
    waiting = Inbox.select().where((Inbox.ready == False) & (Inbox.settled == False))  # noqa: E712
    return {PENDING: waiting.count(), COUNTED: Signature.select().where(Signature.status == COUNTED).count()}


def count_on_page(browser, slug="test"):
    page = browser.client.get(f"/p/{slug}").get_data(as_text=True)
    return int(re.search(r'class="count">([\d,]+)<', page).group(1).replace(",", ""))


def path_of(link):
    assert link.startswith(PUBLIC_URL + "/p/"), link
    return link[len(PUBLIC_URL) :]


def app_services(browser):
    return browser.app.extensions["countersign"]


def same_response(first, second):
    """Byte for byte: status, body, and every header (names and values)."""
    assert first.status_code == second.status_code
    assert first.get_data() == second.get_data()
    assert first.headers.to_wsgi_list() == second.headers.to_wsgi_list()


# --- the whole flow -----------------------------------------------------------


def test_whole_flow_from_form_to_counted_signature(browser, petition, mailbox):
    submitted = browser.sign("test", Signer(display_name="A supporter in Sheffield"))
    page = submitted.get_data(as_text=True)
    assert submitted.status_code == 200
    assert submitted.headers["Cache-Control"] == "no-store"
    assert "Check your email" in page
    assert not RECEIPT_RE.search(page)
    assert stored() == {PENDING: 1, COUNTED: 0}
    assert count_on_page(browser) == 0

    # One message, to the address as typed, carrying the link.
    (delivery,) = mailbox.deliveries
    assert delivery.recipients == [CLARA.email]
    assert delivery.link.startswith(PUBLIC_URL + "/p/test/confirm/")
    # The database holds the token's SHA-256 only, until it expires; the mail
    # went from the outbox, whose sealed address is gone once sent.
    pending = Inbox.get()
    raw = base64.urlsafe_b64decode(delivery.token + "=")
    assert len(raw) == 32 and bytes(pending.token_hash) == hashlib.sha256(raw).digest()
    assert pending.token_expires is not None and not pending.ready
    assert pending.display_name == "A supporter in Sheffield" and pending.district == "S1"
    assert [row.sealed for row in Outbox.select()] == [None]

    button = browser.client.get(path_of(delivery.link))
    assert button.status_code == 200
    assert button.headers["Cache-Control"] == "no-store"
    assert "Confirm my signature" in button.get_data(as_text=True)
    assert "A supporter in Sheffield" in button.get_data(as_text=True)

    confirmed = browser.confirm(delivery.link)
    assert confirmed.status_code == 200
    assert confirmed.headers["Cache-Control"] == "no-store"
    code = receipt_from(confirmed)
    assert stored() == {PENDING: 0, COUNTED: 1}
    assert count_on_page(browser) == 1
    assert "A supporter in Sheffield" in browser.client.get("/p/test").get_data(as_text=True)
    assert "Counted." in browser.check_receipt("test", code).get_data(as_text=True)
    counted = Signature.get()
    assert (counted.token_hash, counted.token_expires, counted.token_sent_at) == (None, None, None)
    assert Inbox.select().count() == 0  # settled: the signature holds the receipt
    assert len(mailbox.deliveries) == 1


def test_message_is_plain_text_from_a_clear_sender_without_tracking(browser, petition, mailbox):
    browser.sign("test", Signer())
    message = mailbox.last().message
    assert message["From"] == "Countersign test <petitions@example.org>"
    assert message["To"] == CLARA.email
    assert message["Subject"] == "About your request" and "Petition test" not in message["Subject"]
    assert message.get_content_type() == "text/plain" and not message.is_multipart()
    assert message.get_content_charset() == "utf-8"
    assert message["Auto-Submitted"] == "auto-generated"
    assert message["Content-Language"] == "en"
    body = mailbox.last().body
    # The only link is the confirmation link: no images, no tracking, no HTML.
    assert re.findall(r"https?://\S+", body) == [mailbox.last().link]
    assert "<" not in body
    # Nothing of what was typed but the address it went to.
    assert CLARA.name not in body and "S1 2HE" not in body and CLARA.email not in body


def test_message_language_follows_the_request(browser, petition, mailbox):
    browser.client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "zh-HK,zh;q=0.9"
    browser.sign("test", Signer())
    assert mailbox.last().message["Content-Language"] == "zh-Hant"


def test_link_uses_public_url_never_the_host_header(browser, petition, mailbox):
    url = "/p/test/sign"
    page = browser.client.get(url, base_url="http://attacker.example")
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "name": CLARA.name, "postcode": CLARA.postcode, "email": CLARA.email, "eligible": "y"}
    response = browser.client.post(url, data=data, base_url="http://attacker.example")
    assert response.status_code == 200
    browser.deliver()
    assert mailbox.last().link.startswith(PUBLIC_URL + "/")
    assert "attacker.example" not in mailbox.last().body


def test_petition_without_email_counts_at_once_and_sends_nothing(browser, services, mailbox):
    from helpers import make_petition

    make_petition(services, "no-email", require_email=False)
    receipt_from(browser.sign("no-email", Signer(email=None)))
    assert count_on_page(browser, "no-email") == 1
    assert not mailbox.deliveries


# --- duplicates and probing ---------------------------------------------------


def test_duplicate_of_counted_signature_gets_identical_page_and_already_signed_mail(browser, petition, mailbox):
    first = browser.sign("test", CLARA)
    code = receipt_from(browser.confirm(mailbox.last().link))
    before = stored()

    # The same address, spelled differently: the same email tag.
    again = Signer(name="CHEUNG Clara", email="  Clara.Cheung+again@EXAMPLE.org ")
    duplicate = browser.sign("test", again)
    same_response(first, duplicate)
    # A different person's first signature reads the same too.
    same_response(first, browser.sign("test", WONG))

    # Each submission is one inbox row, whatever the address's state.
    assert stored() == {PENDING: before[PENDING] + 2, COUNTED: before[COUNTED]}
    assert count_on_page(browser) == 1
    (told,) = mailbox.to("Clara.Cheung+again@EXAMPLE.org")
    assert "already been used to sign it" in told.body
    assert not RECEIPT_RE.search(told.body) and code not in told.body
    assert "/p/test/receipt" in told.body
    assert "Counted." in browser.check_receipt("test", code).get_data(as_text=True)
    # Its link gives the mailbox owner a new receipt for the same signature, and counts nothing.
    again_code = receipt_from(browser.confirm(told.link))
    assert "Counted." in browser.check_receipt("test", again_code).get_data(as_text=True)
    assert count_on_page(browser) == 1


def test_a_later_submission_never_changes_an_earlier_pending_one(app, browser, petition, mailbox, clock):
    # Issue 11: a stranger resubmitting a pending address (long after its mail)
    # used to kill the old link and overwrite the display name and tags.
    first = browser.sign("test", Signer(display_name="First try"))
    old_link = mailbox.last().link
    clock.advance(seconds=app.config["CONFIRM_RESEND_SECONDS"] + 1)

    second = browser.sign("test", Signer(name="Someone Else Entirely", display_name="Second try"))
    same_response(first, second)
    assert len(mailbox.to(CLARA.email)) == 2
    new_link = mailbox.last().link
    assert new_link != old_link
    assert stored() == {PENDING: 2, COUNTED: 0}
    # Each link shows and confirms what was sent with it.
    assert "First try" in browser.client.get(path_of(old_link)).get_data(as_text=True)
    assert "Second try" in browser.client.get(path_of(new_link)).get_data(as_text=True)

    first_code = receipt_from(browser.confirm(old_link))
    page = browser.client.get("/p/test").get_data(as_text=True)
    assert "First try" in page and "Second try" not in page
    # Confirming the other one too counts nothing more; its receipt leads to the one that counts.
    second_code = receipt_from(browser.confirm(new_link))
    assert count_on_page(browser) == 1 and "Second try" not in browser.client.get("/p/test").get_data(as_text=True)
    for code in (first_code, second_code):
        assert "Counted." in browser.check_receipt("test", code).get_data(as_text=True)


def test_fresh_links_are_rate_limited(app, browser, petition, mailbox, clock):
    first = browser.sign("test", CLARA)
    link = mailbox.last().link
    clock.advance(seconds=app.config["CONFIRM_RESEND_SECONDS"] - 1)
    # Within the interval: the same page, but no mail, and the link still works.
    same_response(first, browser.sign("test", CLARA))
    same_response(first, browser.sign("test", CLARA))
    assert len(mailbox.deliveries) == 1
    clock.advance(seconds=2)
    browser.sign("test", CLARA)
    assert len(mailbox.deliveries) == 2
    # The first link was not replaced; either counts the address once.
    receipt_from(browser.confirm(link))
    receipt_from(browser.confirm(mailbox.last().link))
    assert count_on_page(browser) == 1


def test_a_second_submission_mails_nothing_whether_pending_or_counted(app, browser, petition, mailbox, clock):
    # Were only fresh links limited, a prober submitting twice would see the
    # second answer take an SMTP conversation longer exactly when the address
    # had signed. Both are limited alike, so both second answers send nothing.
    receipt_from(browser.sign_and_confirm("test", CLARA))
    clock.advance(minutes=30)
    first = browser.sign("test", CLARA)  # counted: "already signed"
    browser.sign("test", WONG)  # new: a link
    sent = len(mailbox.deliveries)
    same_response(first, browser.sign("test", CLARA))
    same_response(first, browser.sign("test", WONG))
    assert len(mailbox.deliveries) == sent

    clock.advance(seconds=app.config["CONFIRM_RESEND_SECONDS"] + 1)
    browser.sign("test", CLARA)
    browser.sign("test", WONG)
    assert len(mailbox.deliveries) == sent + 2
    assert ["already been used to sign it" in d.body for d in mailbox.deliveries[-2:]] == [True, False]


def test_time_of_the_last_already_signed_mail_is_forgotten(app, browser, petition, mailbox, clock):
    receipt_from(browser.sign_and_confirm("test", CLARA))
    assert Outbox.select().count() == 0  # confirming forgot the confirmation mail's time
    browser.sign("test", CLARA)
    (sent,) = Outbox.select()
    assert sent.sent_at is not None and sent.sealed is None and sent.kind == "already_signed"
    clock.advance(seconds=app.config["CONFIRM_RESEND_SECONDS"] + 1)
    ledger.expire_pending(app.extensions["countersign"])
    assert Outbox.select().count() == 0


# --- the link -----------------------------------------------------------------


def test_get_on_the_link_does_not_confirm(browser, petition, mailbox):
    browser.sign("test", CLARA)
    path = path_of(mailbox.last().link)
    for _ in range(3):  # a mail scanner, a preview, the signer
        assert browser.client.get(path).status_code == 200
        assert browser.client.head(path).status_code == 200
    assert stored() == {PENDING: 1, COUNTED: 0}
    # A POST without the page's CSRF token (a cross-site form) does not either.
    refused = browser.client.post(path, data={})
    assert refused.status_code == 400
    assert stored() == {PENDING: 1, COUNTED: 0}
    assert count_on_page(browser) == 0


def test_reused_link_gets_a_clear_page_and_no_second_receipt(browser, petition, mailbox):
    browser.sign("test", CLARA)
    link = mailbox.last().link
    receipt_from(browser.confirm(link))
    for response in (browser.client.get(path_of(link)), browser.confirm(link)):
        page = response.get_data(as_text=True)
        assert response.status_code == 404
        assert "already been used" in page and "not valid" in page
        assert not RECEIPT_RE.search(page)
    assert stored() == {PENDING: 0, COUNTED: 1}
    assert count_on_page(browser) == 1


def test_expired_link_gets_a_clear_page_and_counts_nothing(app, browser, petition, mailbox, clock):
    browser.sign("test", CLARA)
    link = mailbox.last().link
    button_token = browser.csrf(path_of(link))
    clock.advance(seconds=app.config["CONFIRM_TOKEN_TTL_SECONDS"] + 1)
    for response in (
        browser.client.get(path_of(link)),
        browser.client.post(path_of(link), data={"csrf_token": button_token}),
    ):
        assert response.status_code == 410
        assert "expired" in response.get_data(as_text=True)
    assert stored() == {PENDING: 1, COUNTED: 0}
    assert count_on_page(browser) == 0

    assert ledger.expire_pending(app.extensions["countersign"]) == 1
    assert stored() == {PENDING: 0, COUNTED: 0}
    assert browser.client.get(path_of(link)).status_code == 404
    # Signing again starts afresh.
    receipt_from(browser.sign_and_confirm("test", CLARA))
    assert count_on_page(browser) == 1


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "A" * 42,
        "A" * 44,
        "!" * 43,
        "A" * 42 + "B",  # non-zero padding bits: not a form token_urlsafe(32) produces
        "%00" * 15,
    ],
)
def test_malformed_link_is_400(browser, petition, mailbox, token):
    browser.sign("test", CLARA)
    response = browser.client.get(f"/p/test/confirm/{token}")
    assert response.status_code == 400
    assert "not a valid confirmation link" in response.get_data(as_text=True)
    assert stored() == {PENDING: 1, COUNTED: 0}


def test_link_to_another_petition_is_not_valid(browser, services, petition, mailbox):
    from helpers import make_petition

    make_petition(services, "other")
    browser.sign("test", CLARA)
    token = mailbox.last().token
    assert browser.client.get(f"/p/other/confirm/{token}").status_code == 404
    assert browser.client.get(f"/p/nope/confirm/{token}").status_code == 404


def test_link_on_a_closed_petition_confirms_nothing(browser, petition, mailbox):
    browser.sign("test", CLARA)
    link = mailbox.last().link
    button_token = browser.csrf(path_of(link))
    Petition.update(status="closed").where(Petition.id == petition.id).execute()
    assert browser.client.get(path_of(link)).status_code == 409
    assert browser.client.post(path_of(link), data={"csrf_token": button_token}).status_code == 409
    assert stored() == {PENDING: 1, COUNTED: 0}


def test_confirming_supersedes_paper_once(services, browser, petition, mailbox):
    identity = ledger.canonical_identity(
        services, petition, name=CLARA.name, postcode=CLARA.postcode, email="x@example.org"
    )
    person, _ = ledger.compute_tags(services, petition, identity)
    Signature.create(petition=petition, person_tag=person, channel="paper", status=COUNTED, day="2026-11-01")
    ledger.publish(services, petition, force=True)
    browser.sign("test", CLARA)
    browser.confirm(mailbox.last().link)
    # Both count until close (issue 11: no "superseded" in the prober's batch) ...
    assert Signature.get(Signature.channel == "paper").status == COUNTED
    assert count_on_page(browser) == 2
    # ... and at close the paper one is superseded, once.
    ledger.close_petition(app_services(browser), petition)
    paper = Signature.get(Signature.channel == "paper")
    assert (paper.status, paper.withdraw_reason) == ("withdrawn", "superseded")
    assert count_on_page(browser) == 1


# --- when mail cannot be sent -------------------------------------------------


def waiting_mail():
    return Outbox.select().where(Outbox.sealed.is_null(False)).count()


def test_smtp_down_delays_the_mail_never_the_page(app, browser, petition, mailbox, caplog, clock):
    use_mail_settings(app, MAIL_PORT=free_port())
    response = browser.sign("test", CLARA)
    assert response.status_code == 200 and "Check your email" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    assert stored() == {PENDING: 1, COUNTED: 0} and waiting_mail() == 1
    assert "mail not sent: ConnectionRefusedError" in caplog.text
    # The server comes back: the retry waits for its backoff, then the mail goes.
    use_mail_settings(app)
    browser.deliver()
    assert not mailbox.deliveries
    clock.advance(minutes=1)
    browser.deliver()
    assert waiting_mail() == 0
    receipt_from(browser.confirm(mailbox.to(CLARA.email)[-1].link))
    assert stored() == {PENDING: 0, COUNTED: 1}


def test_smtp_down_page_is_the_same_for_new_pending_and_counted(app, browser, petition, mailbox, clock):
    # WONG has a counted signature, CLARA a pending one (link mailed).
    receipt_from(browser.sign_and_confirm("test", WONG))
    browser.sign("test", CLARA)
    clara_link = mailbox.last().link
    clock.advance(seconds=app.config["CONFIRM_RESEND_SECONDS"] + 1)

    use_mail_settings(app, MAIL_PORT=free_port())
    new = browser.sign("test", Signer(name="Ann Other", email="ann@example.org"))
    pending = browser.sign("test", CLARA)
    counted = browser.sign("test", WONG)
    assert new.status_code == 200
    same_response(new, pending)
    same_response(new, counted)
    assert waiting_mail() == 3
    # A later submission never replaces an earlier one: CLARA's first link still works.
    use_mail_settings(app)
    receipt_from(browser.confirm(clara_link))


def test_refused_recipient_never_reaches_a_log_and_is_given_up(app, browser, petition, mailbox, caplog, clock):
    # smtplib's SMTPRecipientsRefused carries the address: it must go no further.
    mailbox.refused.add(CLARA.email)
    response = browser.sign("test", CLARA)
    assert response.status_code == 200
    assert "mail not sent: SMTPRecipientsRefused" in caplog.text
    for _ in range(mailqueue.MAX_ATTEMPTS):
        clock.advance(hours=2)
        browser.deliver()
    # Given up: the sealed address is gone, not kept for ever.
    assert Outbox.select().count() == 0


def test_silent_smtp_server_holds_neither_the_page_nor_the_sender_beyond_its_deadline(
    app, browser, petition, mailbox
):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        use_mail_settings(app, MAIL_PORT=silent.getsockname()[1], MAIL_TIMEOUT_SECONDS=1)
        started = time.monotonic()
        response = browser.sign("test", CLARA)
    assert response.status_code == 200
    assert time.monotonic() - started < 10
    assert stored() == {PENDING: 1, COUNTED: 0} and waiting_mail() == 1


def test_without_public_url_outside_development_nothing_is_mailed_or_kept(app, browser, petition, mailbox, caplog):
    use_mail_settings(app, PUBLIC_URL="", DEVELOPMENT=False)
    # No link can be built, so the request refuses before it stores anything.
    assert browser.sign("test", CLARA).status_code == 503
    assert stored() == {PENDING: 0, COUNTED: 0}
    assert not mailbox.deliveries
    assert "mail not sent: MailNotConfigured" in caplog.text


# --- expiry -------------------------------------------------------------------


def test_expire_pending_deletes_only_expired_pending_signatures(app, browser, petition, mailbox, clock):
    browser.sign("test", CLARA)  # will expire
    clock.advance(days=6)
    browser.sign("test", WONG)  # still valid a day later
    receipt_from(browser.sign_and_confirm("test", Signer(name="Ann Other", email="ann@example.org")))
    clock.advance(days=1, seconds=1)
    assert ledger.expire_pending(app.extensions["countersign"]) == 1
    assert stored() == {PENDING: 1, COUNTED: 1}
    receipt_from(browser.confirm(mailbox.to(WONG.email.strip())[-1].link))


@pytest.mark.parametrize("command", [["publish"], ["expire"]])
def test_signing_publish_and_expire_delete_expired_pending(
    app, browser, petition, mailbox, clock, instance_path, monkeypatch, command
):
    browser.scheduler = False  # the command is what expires them here
    clock.advance(days=-8)  # signed eight days ago: the link expired yesterday
    browser.sign("test", CLARA)
    clock.advance(days=8)
    browser.sign("test", WONG)  # signed now: stays
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    if POSTGRES_URL:
        monkeypatch.setenv("SIGNING_DATABASE_URL", POSTGRES_URL)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert "deleted 1 unconfirmed signature" in result.output
    assert stored() == {PENDING: 1, COUNTED: 0}


# --- the demo: mail on the console, tokens out of the request log -------------


def test_demo_request_log_never_shows_a_token(app, browser, petition, mailbox, caplog):
    from signing.cli import QuietRequestHandler

    browser.sign("test", CLARA)
    path = path_of(mailbox.last().link)
    handler = QuietRequestHandler.__new__(QuietRequestHandler)
    handler.command, handler.path = "GET", path + "?x=1"
    handler.log_request(200)
    handler.log("error", "code %d, message %s", 400, f"Bad request syntax ('GET {path} HTTP/1.1')")
    assert "GET /p/test/confirm/… 200" in caplog.text
    assert mailbox.last().token not in caplog.text
