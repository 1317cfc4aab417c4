"""No log line carries an address, a user agent, an identity, a receipt code or a token.

One test runs every flow with every logger at DEBUG and all output captured:
signing with confirmation, a duplicate, receipts and proofs, withdrawal, a
petition without email, organiser login (wrong and right), paper signatures
typed in, uploaded and imported from the command line, moderation,
publishing from the command line, every audit endpoint, the development
server's request log, and the errors (400 CSRF, 404, 405, 413, 415, 429,
500, 503). Then the search of test_privacy.py (conftest.assert_no_trace)
runs over the logs and the instance folder, for the identities, the
receipt codes, the tokens and the client address.
"""

import dataclasses
import http.client
import io
import logging
import threading

import pytest
from click.testing import CliRunner
from helpers import ORGANISER_PASSWORD as PASSWORD
from helpers import Signer, assert_no_trace, captured_logs, make_petition, receipt_from
from test_privacy import SIGNER, sign_everything
from werkzeug.serving import make_server

from signing import db, ledger, logging_setup
from signing.cli import QuietRequestHandler
from signing.cli import main as cli
from signing.ledger import accounts
from signing.web import ratelimit

ADDRESS = "127.0.0.1"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0 CountersignLogProbe"
NO_EMAIL_SIGNER = Signer(name="Philippa Marchbanks-Ndiaye", postcode="SW1A 1AA", email="", display_name="Pip")
PAPER_SIGNER = Signer(name="Ottoline Vasquez-Brightwater", postcode="S10 2TN", email="")
UPLOADED_SIGNER = Signer(name="Bartholomew Quennell", postcode="DN1 1AA", email="")
CLI_SIGNER = Signer(name="Wilhelmina Stroudley", postcode="S2 4SU", email="")


@pytest.fixture
def every_logger_at_debug(caplog):
    """Every logger that exists (the test SMTP server's own aside) at DEBUG, for this test."""
    caplog.set_level(logging.DEBUG)
    saved = {}
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger) and not name.startswith("mail.log"):
            saved[name] = logger.level
            logger.setLevel(logging.DEBUG)
    yield
    for name, level in saved.items():
        logging.getLogger(name).setLevel(level)


def test_every_flow_leaves_no_trace_in_any_log(
    app, browser, services, petition, other_process, instance_path, caplog, capfd, monkeypatch, every_logger_at_debug
):
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    browser.client.environ_base.update(REMOTE_ADDR=ADDRESS, HTTP_USER_AGENT=USER_AGENT)
    client = browser.client

    # Signers: confirm by mail, duplicate, receipt, withdraw, sign again.
    codes = sign_everything(browser, SIGNER)
    proof = browser.submit("/p/test/receipt", {"receipt": codes[1]}, action="/p/test/receipt/proof")
    assert proof.status_code == 200
    make_petition(services, "open-list", require_email=False)
    no_email = receipt_from(browser.sign("open-list", NO_EMAIL_SIGNER))
    assert browser.sign("open-list", NO_EMAIL_SIGNER).status_code == 200  # a duplicate, the same page
    codes += [no_email]

    # Organisers: a wrong login, a right one, paper typed in and uploaded, moderation.
    with db.database.connection_context():
        accounts.add_organiser(services, "alice@campaign.example", PASSWORD, is_operator=True)
    for password, status in (("not the password", 400), (PASSWORD, 302)):
        login = browser.submit("/organiser/login", {"email": "alice@campaign.example", "password": password})
        assert login.status_code == status
    paper = {"name": PAPER_SIGNER.name, "postcode": PAPER_SIGNER.postcode, "email": ""}
    assert browser.submit("/organiser/p/open-list", paper, "/organiser/p/open-list/paper").status_code == 303
    csv = f"name,postcode\n{UPLOADED_SIGNER.name},{UPLOADED_SIGNER.postcode}\n".encode()
    uploaded = client.post(
        "/organiser/p/open-list/paper/upload",
        data={"csrf_token": browser.csrf("/organiser/p/open-list"), "file": (io.BytesIO(csv), "paper.csv")},
        content_type="multipart/form-data",
    )
    assert uploaded.status_code == 200
    names = client.get("/organiser/p/open-list/names").get_data(as_text=True)
    assert "Pip" in names
    signature_id = names.split("/names/")[1].split("/")[0]
    hide = f"/organiser/p/open-list/names/{signature_id}/hide"
    assert client.post(hide, data={"csrf_token": browser.csrf("/organiser/p/open-list")}).status_code == 302

    # The command line: a paper import and a publish, in this process.
    csv_file = instance_path.parent / "paper-cli.csv"
    csv_file.write_text(f"name,postcode\n{CLI_SIGNER.name},{CLI_SIGNER.postcode}\n")
    try:
        imported = CliRunner().invoke(cli, ["import", "open-list", str(csv_file)])
        assert imported.exit_code == 0, imported.output
    finally:
        csv_file.unlink()
    assert CliRunner().invoke(cli, ["publish", "--now"]).exit_code == 0

    # Auditors.
    for path in ("key", "heads", "head/1", "leaves?start=0&end=1", "proof/inclusion?index=0&size=1",
                 "proof/consistency?first=1&second=1", "bundle", "leaves?start=x"):
        response = client.get(f"/p/test/audit/{path}")
        response.get_data()
        assert response.status_code in (200, 400)

    # Errors.
    assert client.post("/p/test/sign", data={"name": SIGNER.name}).status_code == 400  # no CSRF token
    assert client.get("/p/no-such-petition").status_code == 404
    assert client.delete("/p/test").status_code == 405
    assert client.post("/p/test/sign", data={"name": SIGNER.name * 5000}).status_code == 413
    assert client.post("/p/test/sign", json={"name": SIGNER.name}).status_code == 415
    app.config["RATE_LIMIT_RECEIPT"] = "1/minute"
    statuses = [browser.check_receipt("test", codes[0]).status_code for _ in range(2)]
    assert statuses[-1] == 429
    # The limiter's key for this client: a per-day pseudonym of its address, so never logged either.
    client_key = app.extensions[ratelimit.ADDRESS_KEYS_EXTENSION](ADDRESS)
    throttle = services.throttle
    monkeypatch.setattr(throttle, "wait_seconds", 0)
    for _ in range(throttle.slots):
        throttle.acquire(None)  # every slot busy
    try:
        assert browser.sign("open-list", Signer(name="Busy Signer", email="")).status_code == 503
    finally:
        for _ in range(throttle.slots):
            throttle.release()

    def broken(*_args):
        raise RuntimeError(f"{SIGNER.name} {SIGNER.postcode} {codes[0]} from {ADDRESS}")

    monkeypatch.setattr(ledger, "apply_all_schedules", broken)
    assert client.get("/").status_code == 500
    monkeypatch.undo()

    # The development server's request log (signing demo), a token in the path.
    confirm_path = f"/p/test/confirm/{browser.mailbox.tokens[-1]}"
    server = make_server(ADDRESS, 0, app, threaded=True, request_handler=QuietRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        connection = http.client.HTTPConnection(ADDRESS, server.port, timeout=10)
        connection.request("GET", confirm_path, headers={"User-Agent": USER_AGENT})
        assert connection.getresponse().status in (200, 404, 410)
        connection.close()
    finally:
        server.shutdown()
        thread.join(5)

    logs = captured_logs(caplog, capfd)
    # The capture worked: these lines are there, and say nothing about anyone.
    assert b"unhandled RuntimeError in public.index" in logs
    assert b"GET /p/test/confirm/\xe2\x80\xa6 " in logs  # the request line, token elided
    assert b"CountersignLogProbe" not in logs and b"Firefox" not in logs
    assert b"ratelimit 1 per 1 minute" in logs  # the refusal is logged ...
    assert client_key[:8].encode() not in logs  # ... without the client's key
    # Signers without email get a placeholder (never typed anywhere) for the search.
    unused = "qz7-never-typed@example.invalid"
    signers = [SIGNER] + [
        dataclasses.replace(signer, email=unused)
        for signer in (NO_EMAIL_SIGNER, PAPER_SIGNER, UPLOADED_SIGNER, CLI_SIGNER)
    ]
    assert_no_trace(instance_path, logs, signers, codes + browser.mailbox.tokens, addresses=(ADDRESS,))


class Keep(logging.Handler):
    """A handler with no filter of ours: what any handler an operator adds would get."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(message)s"))
        self.lines, self.records = [], []

    def emit(self, record):
        self.records.append(record)
        self.lines.append(self.format(record))


def test_records_are_scrubbed_whoever_logs_them():
    logging_setup.install()
    keep = Keep()
    third_party = logging.getLogger("some.library")
    third_party.addHandler(keep)
    third_party.setLevel(logging.DEBUG)
    sql = logging.getLogger("peewee.probe")
    sql.addHandler(keep)
    sql.setLevel(logging.DEBUG)
    try:
        third_party.warning("client %s sent %s", "203.0.113.9", "GET /p/x/confirm/SECRETTOKEN HTTP/1.1")
        third_party.info("mail to zeb.quill@gmail.com, receipt ABCD-EFGH-IJKL-MNOP-QRST-UVWX-YZ")
        third_party.info("request from %s", "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36")
        third_party.info("request", extra={"remote_addr": "203.0.113.9"})
        sql.debug(("SELECT * FROM signature WHERE person_tag = ?", [b"\x01" * 32]))
        try:
            raise ValueError("bad value from 203.0.113.9")
        except ValueError:
            third_party.exception("failed")
    finally:
        third_party.removeHandler(keep)
        sql.removeHandler(keep)
    text = "\n".join(keep.lines)
    for secret in ("203.0.113.9", "SECRETTOKEN", "zeb.quill", "ABCD-EFGH", "Mozilla", "AppleWebKit", "person_tag"):
        assert secret not in text
    assert keep.lines[:3] == [
        "client [address] sent GET /p/x/confirm/… HTTP/1.1",
        "mail to [email], receipt [receipt]",
        "log record withheld: it carried a user agent",
    ]
    assert "log record withheld: SQL with its parameters" in text
    assert "ValueError: bad value from [address]" in text
    # The handlers logging_setup configures drop what was withheld.
    handler_filter = logging_setup.PrivacyFilter()
    assert [handler_filter.filter(record) for record in keep.records] == [True, True, False, False, False, True]


def test_one_configuration_for_cli_and_gunicorn(load_gunicorn_conf):
    config = logging_setup.LOGGING
    assert config["loggers"]["gunicorn.access"]["handlers"] == []
    assert config["loggers"]["peewee"]["level"] == "WARNING"
    assert config["filters"]["redact"]["()"] is logging_setup.PrivacyFilter
    gunicorn_conf = load_gunicorn_conf()
    assert gunicorn_conf.logconfig_dict == logging_setup.gunicorn_logconfig("INFO")
    assert gunicorn_conf.accesslog is None
