"""Does a signing request take longer or shorter depending on the target's state? (issue 11, channel 4)

Serves the real application over loopback HTTP (werkzeug, threaded), with a
real SQLite file, real Argon2id at the configured cost, a real SMTP server
(aiosmtpd) and the background outbox sender running. For each state, 40 or
more interleaved pairs: a submission of a NEW address and a submission of an
address in that state, in random order within each pair. Reports medians,
how often the state's request was the faster of its pair, and a two-sided
Mann-Whitney U test (normal approximation, ties averaged).

    python3 -m bench.probe_timing --pairs 60

States: ``duplicate`` (an address submitted a moment ago, its mail still
going out), ``pending_just_mailed`` (its link mailed under the resend limit
ago), ``counted`` (confirmed and published).
"""

import argparse
import email
import email.policy
import http.client
import math
import random
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from aiosmtpd.controller import Controller
from werkzeug.serving import WSGIRequestHandler, make_server

from signing import background, create_app, db, keyring, ledger, migrations

CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
LINK_RE = re.compile(r"/p/bench/confirm/([A-Za-z0-9_-]+)")


class Mailbox:
    def __init__(self):
        self.bodies = {}

    async def handle_DATA(self, server, session, envelope):
        body = email.message_from_bytes(envelope.original_content, policy=email.policy.default).get_content()
        for address in envelope.rcpt_tos:
            self.bodies.setdefault(address, []).append(body)
        return "250 OK"


class QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):
        pass


def free_port():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(port, method, path, body=None, cookie=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if body else {}
    if cookie:
        headers["Cookie"] = cookie
    connection.request(method, path, body=body, headers=headers)
    response = connection.getresponse()
    data = response.read().decode("utf-8", "replace")
    cookie = (response.getheader("Set-Cookie") or "").split(";")[0] or cookie
    connection.close()
    return response.status, data, cookie


def timed_sign(port, name, email):
    """Fetch the form (untimed), post it (timed); the POST's wall time in ms."""
    status, page, cookie = request(port, "GET", "/p/bench/sign")
    token = CSRF_RE.search(page).group(1)
    form = urlencode({"csrf_token": token, "name": name, "postcode": "S1 2HE", "email": email, "eligible": "y"})
    started = time.perf_counter()
    status, _, _ = request(port, "POST", "/p/bench/sign", body=form, cookie=cookie)
    elapsed = (time.perf_counter() - started) * 1000
    assert status == 200, status
    return elapsed


def mann_whitney(first, second):
    """Two-sided p-value of the Mann-Whitney U test, normal approximation with tie correction."""
    values = sorted([(v, 0) for v in first] + [(v, 1) for v in second])
    ranks, i = [0.0] * len(values), 0
    ties = 0.0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1][0] == values[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        ties += (j - i + 1) ** 3 - (j - i + 1)
        i = j + 1
    n1, n2 = len(first), len(second)
    r1 = sum(rank for rank, (_, group) in zip(ranks, values, strict=True) if group == 0)
    u = r1 - n1 * (n1 + 1) / 2
    n = n1 + n2
    sigma = math.sqrt(n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))))
    z = (u - n1 * n2 / 2) / sigma if sigma else 0.0
    return u, math.erfc(abs(z) / math.sqrt(2))


def confirm(port, mailbox, address):
    token = LINK_RE.search(mailbox.bodies[address][-1]).group(1)
    status, page, cookie = request(port, "GET", f"/p/bench/confirm/{token}")
    csrf = CSRF_RE.search(page).group(1)
    request(port, "POST", f"/p/bench/confirm/{token}", body=urlencode({"csrf_token": csrf}), cookie=cookie)


def wait_for_mail(mailbox, address, count=1, timeout=20):
    deadline = time.monotonic() + timeout
    while len(mailbox.bodies.get(address, [])) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(mailbox.bodies.get(address, [])) >= count, f"no mail for {address}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--argon2-memory-kib", type=int, default=None, help="Default: the configured cost.")
    options = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="countersign-probe-timing-"))
    mailbox = Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    keyring.create_missing(folder / "master.key", folder / "log.key")
    db.open_database(f"sqlite:///{folder / 'countersign.db'}")
    migrations.migrate_to_latest()
    config = {
        "INSTANCE_PATH": str(folder),
        "DEVELOPMENT": True,
        "PUBLISH_INTERVAL_SECONDS": 0,
        "MIN_BATCH": 1,
        "RATE_LIMITS_ENABLED": False,
        "MAIL_BACKEND": "smtp",
        "MAIL_HOST": "127.0.0.1",
        "MAIL_PORT": smtp.port,
        "MAIL_SECURITY": "none",
        "PUBLIC_URL": "https://petitions.example.org",
        "CONFIRM_RESEND_SECONDS": 3600,
    }
    if options.argon2_memory_kib:
        config["ARGON2_MEMORY_KIB"] = options.argon2_memory_kib
    app = create_app(config)
    with db.database.connection_context():
        ledger.create_petition(app.extensions["countersign"], slug="bench", title="Bench", body="Timing.")
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    serial = iter(range(10**6))

    def fresh():
        n = next(serial)
        return f"Person {n:06d}", f"person{n}@example.org"

    def prepare(state):
        name, email = fresh()
        if state == "duplicate":
            timed_sign(port, name, email)
        elif state == "pending_just_mailed":
            timed_sign(port, name, email)
            wait_for_mail(mailbox, email)
        elif state == "counted":
            timed_sign(port, name, email)
            wait_for_mail(mailbox, email)
            confirm(port, mailbox, email)
        return name, email

    states = ["duplicate", "pending_just_mailed", "counted"]
    prepared = {state: [prepare(state) for _ in range(options.pairs)] for state in states if state != "duplicate"}
    time.sleep(2)  # let the sender and the next batch settle what was prepared
    print(f"{options.pairs} interleaved pairs per state, over loopback HTTP; times in ms\n")
    print(f"{'state':22} {'median new':>11} {'median state':>13} {'state faster':>13} {'U':>8} {'p':>7}")
    for state in states:
        new_times, state_times, faster = [], [], 0
        for i in range(options.pairs):
            target = prepare(state) if state == "duplicate" else prepared[state][i]
            order = [("new", fresh()), ("state", target)]
            random.shuffle(order)
            pair = {}
            for kind, (name, address) in order:
                pair[kind] = timed_sign(port, name, address)
            new_times.append(pair["new"])
            state_times.append(pair["state"])
            faster += pair["state"] < pair["new"]
        u, p = mann_whitney(new_times, state_times)
        print(
            f"{state:22} {statistics.median(new_times):11.1f} {statistics.median(state_times):13.1f} "
            f"{faster:>6} of {options.pairs:<4} {u:8.0f} {p:7.3f}"
        )
    server.shutdown()
    background.stop(app)
    smtp.stop()


if __name__ == "__main__":
    main()
