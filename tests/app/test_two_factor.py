"""Organiser two-factor sign-in: enrolment, codes that work once, lockout that says nothing."""

import dataclasses
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from click.testing import CliRunner
from helpers import ORGANISER_EMAIL as EMAIL
from helpers import ORGANISER_PASSWORD as PASSWORD
from helpers import OrganiserActions

from crypto import twofactor
from signing import db
from signing.cli import main as cli
from signing.ledger import accounts
from signing.models import Organiser

START = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
FAILED = "do not match an account, or there were too many attempts"
CODE_RE = re.compile(r"<li><code>([A-Z2-7]{4}(?:-[A-Z2-7]{4}){3})</code></li>")
SECRET_RE = re.compile(r"otpauth://totp/[^?]+\?secret=([A-Z2-7]{32})")


@pytest.fixture
def clock(app, services):
    """The app's clock, moved by the test."""
    now = [START]
    app.extensions["countersign"] = dataclasses.replace(services, clock=lambda: now[0])
    return now


def code_at(secret, when):
    return pyotp.TOTP(secret).at(int(when.timestamp()))


def login(browser, password=PASSWORD, code="", email=EMAIL):
    return OrganiserActions(browser).login(email, password, code)


def enrol(browser, clock):
    """Log in, turn two-factor on; (secret, recovery codes)."""
    assert login(browser).status_code == 302
    page = browser.client.get("/organiser/two-factor/enrol")
    secret = SECRET_RE.search(page.get_data(as_text=True)).group(1)
    done = browser.submit(
        "/organiser/two-factor/enrol",
        {"password": PASSWORD, "code": code_at(secret, clock[0])},
    )
    assert done.status_code == 200, done.get_data(as_text=True)
    codes = CODE_RE.findall(done.get_data(as_text=True))
    # The codes page offers one way on, after they are saved: no menu, no footer link, no language switch.
    links = re.findall(r'<a [^>]*href="([^"#]+)"', done.get_data(as_text=True))
    assert links == ["/organiser/"], links
    browser.client.post("/organiser/logout", data={"csrf_token": browser.csrf("/organiser/two-factor")})
    clock[0] += timedelta(minutes=1)
    return secret, codes


def stored(email=EMAIL):
    with db.database.connection_context():
        return Organiser.get(Organiser.email == email)


def test_enrol_page_shows_the_secret_and_uri_as_text_without_caching(browser, organiser, clock):
    login(browser)
    page = browser.client.get("/organiser/two-factor/enrol")
    body = page.get_data(as_text=True)
    secret = SECRET_RE.search(body).group(1)
    assert page.headers["Cache-Control"] == "no-store"
    assert twofactor.grouped(secret) in body
    assert "otpauth://totp/Countersign:alice%40campaign.example?secret=" + secret in body.replace("&amp;", "&")
    assert "<script" not in body and "<img" not in body
    assert stored().totp_secret is None  # nothing kept until a code proves the app has it


def test_enrolment_needs_a_right_code_and_password(browser, organiser, clock):
    login(browser)
    secret = SECRET_RE.search(browser.client.get("/organiser/two-factor/enrol").get_data(as_text=True)).group(1)
    for password, code in ((PASSWORD, "000000"), ("wrong password entirely", code_at(secret, clock[0]))):
        refused = browser.submit("/organiser/two-factor/enrol", {"password": password, "code": code})
        assert refused.status_code == 400
        assert "Nothing was changed" in refused.get_data(as_text=True)
        assert secret in refused.get_data(as_text=True)  # the same secret, so the app's entry still works
    assert stored().totp_secret is None


def test_recovery_codes_are_shown_once_and_stored_only_as_digests(browser, organiser, clock, services):
    secret, codes = enrol(browser, clock)
    assert len(codes) == twofactor.RECOVERY_CODE_COUNT == len(set(codes))
    row = stored()
    assert secret not in row.totp_secret and len(row.totp_secret) == 64  # encrypted at rest
    assert twofactor.open_secret(twofactor.secret_key(services.keyring.master_key), row.id, row.totp_secret) == secret
    state = json.loads(row.recovery_codes)
    assert len(state["recovery"]) == 10
    for code in codes:
        assert code not in row.recovery_codes and code.replace("-", "") not in row.recovery_codes
    assert "<code>" not in browser.client.get("/organiser/two-factor").get_data(as_text=True)


def test_login_needs_the_code_once_two_factor_is_on(browser, organiser, clock):
    secret, _codes = enrol(browser, clock)
    for code in ("", "123456", "not a code at all"):
        refused = login(browser, code=code)
        assert refused.status_code == 400 and FAILED in refused.get_data(as_text=True)
    assert login(browser, code=code_at(secret, clock[0])).status_code == 302


def test_a_totp_code_works_once(browser, organiser, clock):
    secret, _codes = enrol(browser, clock)
    code = code_at(secret, clock[0])
    assert login(browser, code=code).status_code == 302
    browser.client.post("/organiser/logout", data={"csrf_token": browser.csrf("/organiser/")})
    assert login(browser, code=code).status_code == 400  # replayed within its 30 seconds
    clock[0] += timedelta(seconds=30)
    assert login(browser, code=code_at(secret, clock[0])).status_code == 302


def test_a_recovery_code_works_once(browser, organiser, clock):
    _secret, codes = enrol(browser, clock)
    assert login(browser, code=codes[0].lower().replace("-", " ")).status_code == 302
    browser.client.post("/organiser/logout", data={"csrf_token": browser.csrf("/organiser/")})
    assert login(browser, code=codes[0]).status_code == 400
    assert login(browser, code=codes[1]).status_code == 302
    assert accounts.remaining_recovery_codes(stored()) == 8


def test_wrong_code_unknown_account_and_wrong_password_read_the_same(browser, organiser, clock):
    enrol(browser, clock)
    responses = [
        login(browser, code="123456"),
        login(browser, password="wrong password entirely", code="123456"),
        login(browser, email="nobody@campaign.example", code="123456"),
    ]
    assert {response.status_code for response in responses} == {400}
    bodies = [re.sub(r'value="[^"]*"', "", response.get_data(as_text=True)) for response in responses]
    bodies = [body.replace("nobody@campaign.example", EMAIL) for body in bodies]
    assert bodies[0] == bodies[1] == bodies[2]


def test_repeated_wrong_codes_lock_the_account_quietly(browser, organiser, clock):
    secret, _codes = enrol(browser, clock)
    for _ in range(accounts.MAX_FAILED_LOGINS):
        assert login(browser, code="000000").status_code == 400
    locked = login(browser, code=code_at(secret, clock[0]))
    assert locked.status_code == 400 and FAILED in locked.get_data(as_text=True)
    clock[0] += accounts.LOCKOUT + timedelta(seconds=31)
    assert login(browser, code=code_at(secret, clock[0])).status_code == 302


def test_locked_and_unknown_accounts_both_verify_a_password(app, organiser, clock, monkeypatch):
    """A locked account must not answer faster (skipping Argon2) than a missing one."""
    verified = []
    real = accounts._verify
    monkeypatch.setattr(accounts, "_verify", lambda *args: verified.append(1) or real(*args))
    now = START.replace(tzinfo=None)
    with db.database.connection_context():
        Organiser.update(locked_until=now + timedelta(minutes=5)).execute()
        for email in (EMAIL, "nobody@campaign.example"):
            with pytest.raises(accounts.LoginFailed):
                accounts.authenticate(app.extensions["countersign"], email, PASSWORD)
    assert len(verified) == 2


def test_turning_it_off_needs_password_and_code(browser, organiser, clock):
    secret, codes = enrol(browser, clock)
    assert login(browser, code=code_at(secret, clock[0])).status_code == 302
    clock[0] += timedelta(seconds=30)
    page, action = "/organiser/two-factor", "/organiser/two-factor/disable"
    refused = browser.submit(page, {"password": PASSWORD, "code": "000000"}, action)
    assert refused.status_code == 400 and stored().totp_secret is not None
    done = browser.submit(page, {"password": PASSWORD, "code": codes[3]}, action)
    assert done.status_code == 302
    assert stored().totp_secret is None and stored().recovery_codes is None
    browser.client.post("/organiser/logout", data={"csrf_token": browser.csrf("/organiser/")})
    assert login(browser).status_code == 302


def test_enrolling_ends_other_sessions_but_not_this_one(app, browser, organiser, clock):
    from helpers import ORGANISER_PASSWORD as PASSWORD
    from helpers import Browser

    other = Browser(app.test_client(), browser.mailbox)
    assert login(other).status_code == 302
    assert login(browser).status_code == 302
    page = browser.client.get("/organiser/two-factor/enrol").get_data(as_text=True)
    secret = SECRET_RE.search(page).group(1)
    done = browser.submit(
        "/organiser/two-factor/enrol", {"secret": secret, "password": PASSWORD, "code": code_at(secret, clock[0])}
    )
    assert done.status_code == 200
    assert browser.client.get("/organiser/").status_code == 200
    assert other.client.get("/organiser/").status_code == 302


def test_operator_resets_two_factor_from_the_command_line(browser, organiser, clock, instance_path, monkeypatch):
    enrol(browser, clock)
    with db.database.connection_context():
        Organiser.update(locked_until=START.replace(tzinfo=None) + timedelta(hours=1)).execute()
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    result = CliRunner().invoke(cli, ["organiser", "totp-reset", EMAIL.upper()])
    assert result.exit_code == 0, result.output
    assert "two-factor sign-in is off" in result.output
    row = stored()
    assert row.totp_secret is None and row.recovery_codes is None and row.locked_until is None
    missing = CliRunner().invoke(cli, ["organiser", "totp-reset", "nobody@campaign.example"])
    assert missing.exit_code == 1


def test_recovery_digest_is_domain_separated_sha256():
    codes, digests = twofactor.new_recovery_codes()
    assert all(re.fullmatch(r"[A-Z2-7]{4}(-[A-Z2-7]{4}){3}", code) for code in codes)
    expected = hashlib.sha256(b"countersign/recovery-code/v1\x00" + codes[0].replace("-", "").encode()).hexdigest()
    assert digests[0] == expected
    assert twofactor.recovery_digest("too short") is None


# --- the secret stays on the server; lockout a stranger cannot use --------------------------


def decode_qr_svg(svg):
    """Draw segno's SVG path (horizontal runs) into pixels and read it with ZXing."""
    import numpy
    import zxingcpp

    size = int(re.search(r'width="(\d+)"', svg).group(1))
    scale = int(re.search(r"scale\((\d+)\)", svg).group(1))
    modules = numpy.zeros((size // scale, size // scale), dtype=bool)
    x = y = 0.0
    for command, a, b in re.findall(r"([Mmh])(-?[\d.]+)(?:\s(-?[\d.]+))?", re.search(r' d="([^"]+)"', svg).group(1)):
        if command == "M":
            x, y = float(a), float(b)
        elif command == "m":
            x, y = x + float(a), y + float(b)
        else:
            modules[int(y), int(x) : int(x + float(a))] = True
            x += float(a)
    pixels = numpy.where(numpy.kron(modules, numpy.ones((8, 8), dtype=bool)), 0, 255).astype(numpy.uint8)
    found = zxingcpp.read_barcodes(pixels)
    assert len(found) == 1
    return found[0].text


def test_qr_code_decodes_to_the_same_uri_as_the_text(browser, organiser, clock):
    login(browser)
    body = browser.client.get("/organiser/two-factor/enrol").get_data(as_text=True)
    uri = re.search(r'<code class="uri">([^<]+)</code>', body).group(1).replace("&amp;", "&")
    assert uri.startswith("otpauth://totp/")
    assert decode_qr_svg(re.search(r"<svg.*?</svg>", body, re.S).group(0)) == uri
    assert "<script" not in body


def test_enrolment_secret_stays_on_the_server_and_a_client_chosen_one_fails(browser, organiser, clock):
    login(browser)
    body = browser.client.get("/organiser/two-factor/enrol").get_data(as_text=True)
    secret = SECRET_RE.search(body).group(1)
    assert 'name="secret"' not in body
    assert SECRET_RE.search(browser.client.get("/organiser/two-factor/enrol").get_data(as_text=True)).group(1) == secret
    pending = stored().totp_pending
    assert pending is not None and secret not in pending  # kept sealed, as the secret will be

    chosen = "A" * 32
    hostile = browser.submit(
        "/organiser/two-factor/enrol", {"secret": chosen, "password": PASSWORD, "code": code_at(chosen, clock[0])}
    )
    assert hostile.status_code == 400 and stored().totp_secret is None
    done = browser.submit("/organiser/two-factor/enrol", {"password": PASSWORD, "code": code_at(secret, clock[0])})
    assert done.status_code == 200
    row = stored()
    assert row.totp_pending is None and row.totp_secret == pending


def test_a_stranger_cannot_lock_out_an_organiser_with_two_factor(browser, organiser, clock):
    secret, _codes = enrol(browser, clock)
    for _ in range(accounts.MAX_FAILED_LOGINS * 3):
        assert login(browser, password="a stranger's guess here", code="123456").status_code == 400
    assert stored().locked_until is not None  # the password alone is locked ...
    assert login(browser, code="").status_code == 400
    assert login(browser, code=code_at(secret, clock[0])).status_code == 302  # ... password + code is not


def test_concurrent_wrong_passwords_are_counted_exactly(app, services, organiser):
    import threading

    wrong = accounts.MAX_FAILED_LOGINS - 1
    barrier = threading.Barrier(wrong)
    errors = []

    def attempt():
        try:
            with db.database.connection_context():
                barrier.wait(timeout=10)
                accounts.authenticate(services, EMAIL, "not the password at all")
        except accounts.LoginFailed:
            pass
        except Exception as error:  # noqa: BLE001 -- reported below
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(wrong)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    assert stored().failed_logins == wrong and stored().locked_until is None
    with db.database.connection_context(), pytest.raises(accounts.LoginFailed):
        accounts.authenticate(services, EMAIL, "not the password at all")
    assert stored().locked_until is not None
