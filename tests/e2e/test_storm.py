"""A confirmation storm through `signing serve` (real gunicorn, real SMTP): none refused, all counted.

On SQLite a transaction that reads and then writes must take the write lock
when it begins: otherwise a confirmation that read before another committed
is refused at once with "database is locked" (a 500, the signature left
pending) instead of waiting its turn.
"""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import pytest
from helpers import CSRF_RE, RECEIPT_RE, mail_config
from test_gunicorn import ENGINES, Server, digest, leaf_receipts, request

from crypto.audit import verify_bundle

pytestmark = pytest.mark.slow

SIGNERS = 60
EMAIL_SLUG = "storm"


def mail_settings(smtp_server):
    return {name: value for name, value in mail_config(smtp_server).items() if name != "MAIL_TIMEOUT_SECONDS"}


@pytest.fixture(params=ENGINES)
def email_server(request, tmp_path, smtp_server, mailbox):
    server = Server(tmp_path, request.param, **mail_settings(smtp_server))
    server.cli("petition", "create", EMAIL_SLUG, "--title", "Storm", "--body", "Confirm us all at once.")
    try:
        server.start()
        yield server
    finally:
        server.close()


def sign_with_email(port, index):
    status, page, cookie = request(port, "GET", f"/p/{EMAIL_SLUG}/sign")
    assert status == 200, page
    form = {
        "csrf_token": CSRF_RE.search(page).group(1),
        "name": f"Storm Signer {chr(97 + index // 26)}{chr(97 + index % 26)}",
        "postcode": "S1 2HE",
        "email": f"storm{index}@example.org",
        "eligible": "y",
    }
    status, page, _ = request(port, "POST", f"/p/{EMAIL_SLUG}/sign", body=urlencode(form), cookie=cookie)
    assert status == 200, f"{status}: {page[:300]}"


def wait_for_links(mailbox, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        links = {d.recipients[0]: d.link for d in list(mailbox.deliveries) if d.link}
        if len(links) >= count:
            return links
        time.sleep(0.2)
    raise AssertionError(f"{len(links)} of {count} confirmation mails arrived")


def test_confirmation_storm_every_one_answered_and_counted(email_server, mailbox):
    port = email_server.port
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda i: sign_with_email(port, i), range(SIGNERS)))
    links = wait_for_links(mailbox, SIGNERS)

    # Each signer opens the page with the button first; then all press it at once.
    pressed = []
    for link in links.values():
        path = urlsplit(link).path
        status, page, cookie = request(port, "GET", path)
        assert status == 200, page[:300]
        pressed.append((path, urlencode({"csrf_token": CSRF_RE.search(page).group(1)}), cookie))
    start = threading.Barrier(len(pressed))

    def press(args):
        path, form, cookie = args
        start.wait(timeout=30)
        status, page, cookie = request(port, "POST", path, body=form, cookie=cookie, timeout=60)
        if status == 303:  # the receipt is on the page the confirmation redirects to
            status, page, _ = request(port, "GET", f"/p/{EMAIL_SLUG}/signed", cookie=cookie, timeout=60)
        return status, page

    with ThreadPoolExecutor(max_workers=len(pressed)) as pool:
        answers = list(pool.map(press, pressed))
    statuses = [status for status, _ in answers]
    assert statuses == [200] * SIGNERS, f"{[s for s in statuses if s != 200]} among {SIGNERS}"
    receipts = [RECEIPT_RE.search(page).group(1) for _, page in answers]

    email_server.cli("publish", "--now", EMAIL_SLUG)
    status, bundle, _ = request(port, "GET", f"/p/{EMAIL_SLUG}/audit/bundle", timeout=60, raw=True)
    assert status == 200
    report = verify_bundle(bundle.splitlines())
    assert report.count == SIGNERS
    assert {digest(code) for code in receipts} == set(leaf_receipts(bundle))
    assert "Traceback" not in email_server.log()
