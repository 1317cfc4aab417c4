"""The mail outbox (issue 16 item 3): off the request path, sealed at rest, a deadline for the whole
SMTP conversation, retries with backoff, and a sender killed mid-send never blocks the next mail."""

import dataclasses
import socket
import threading
import time

from helpers import POSTGRES_URL, Clock, Signer, forms_of

from signing import background, db, mail
from signing.ledger import mailqueue
from signing.models import Outbox


def controlled(app):
    clock = Clock(app.extensions["countersign"].clock())
    app.extensions["countersign"] = dataclasses.replace(app.extensions["countersign"], clock=clock)
    return clock


def use_mail(app, **settings):
    services = app.extensions["countersign"]
    app.extensions["countersign"] = dataclasses.replace(services, mailer=mail.from_config({**app.config, **settings}))


def waiting():
    with db.database.connection_context():
        return Outbox.select().where(Outbox.sealed.is_null(False)).count()


def test_the_address_waits_sealed_and_is_gone_once_sent(app, browser, petition, mailbox, instance_path, other_process):
    browser.scheduler = False
    signer = Signer(name="Ottoline Sealwright", email="ottoline.sealed@example.org")
    browser.client  # noqa: B018 -- the browser's own request path, without delivering:
    response = browser.submit(
        "/p/test/sign",
        {"name": signer.name, "postcode": signer.postcode, "email": signer.email, "eligible": "y"},
    )
    assert response.status_code == 200 and not mailbox.deliveries and waiting() == 1
    if not POSTGRES_URL:
        for path in instance_path.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(needle in data for needle in forms_of(signer)), path.name
    browser.deliver()
    assert mailbox.to(signer.email) and waiting() == 0
    with db.database.connection_context():
        assert [row.sealed for row in Outbox.select()] == [None]


def test_a_sender_killed_mid_send_blocks_the_next_mail_only_until_its_lease_ends(app, browser, petition, mailbox):
    clock = controlled(app)
    browser.scheduler = False
    ann = {"name": "Ann Lee", "postcode": "S1 2HE", "email": "ann@example.org", "eligible": "y"}
    browser.submit("/p/test/sign", ann)
    # A sender claims the message and dies before sending it.
    with db.database.connection_context():
        claimed = mailqueue.claim_next(app.extensions["countersign"], background.lease_for(app))
    assert claimed is not None and claimed.kind == "confirm"
    browser.deliver()
    assert not mailbox.deliveries  # still leased to the dead sender
    clock.advance(seconds=background.lease_for(app).total_seconds() + 1)
    browser.deliver()
    assert len(mailbox.to("ann@example.org")) == 1 and waiting() == 0


def drip_server(stop):
    """Accepts, then sends a greeting one byte at a time, never finishing it."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(0.2)

    def serve():
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                while not stop.is_set():
                    try:
                        conn.sendall(b"2")
                    except OSError:
                        break
                    time.sleep(0.2)
        listener.close()

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_a_drip_feeding_server_is_cut_off_at_the_deadline_and_the_mail_goes_later(app, browser, petition, mailbox):
    clock = controlled(app)
    browser.scheduler = False
    stop = threading.Event()
    try:
        # Each read gets a byte well within the socket timeout: only the deadline ends it.
        use_mail(app, MAIL_PORT=drip_server(stop), MAIL_TIMEOUT_SECONDS=5, MAIL_DEADLINE_SECONDS=1)
        started = time.monotonic()
        page = browser.submit(
            "/p/test/sign", {"name": "Bo Li", "postcode": "S1 2HE", "email": "bo@example.org", "eligible": "y"}
        )
        assert page.status_code == 200 and time.monotonic() - started < 2  # the page never waited
        started = time.monotonic()
        assert background.send_due(app) == (0, 1)
        assert time.monotonic() - started < 4
    finally:
        stop.set()
    # The server is back: after the backoff, the mail goes.
    use_mail(app)
    assert background.send_due(app) == (0, 0)  # not yet: backing off
    clock.advance(minutes=1)
    assert background.send_due(app) == (1, 0)
    assert mailbox.to("bo@example.org")


def test_the_background_sender_mails_without_anyone_asking(make_app, petition, mailbox):
    app = make_app(BACKGROUND_SENDER=True)
    client = app.test_client()
    from helpers import Browser

    browser = Browser(client, mailbox)  # no app: the test never delivers itself
    try:
        assert browser.sign("test", Signer(email="auto@example.org")).status_code == 200
        deadline = time.monotonic() + 10
        while not mailbox.to("auto@example.org") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert mailbox.to("auto@example.org"), "the background thread sent nothing"
    finally:
        background.stop(app)
