"""The prober suite (issue 11): nothing a stranger can read depends on whether a given person signed.

For each state a target may be in, two worlds are built that differ only in
WHO is in that state: the target, or a decoy (the target then never signed).
The same stranger script runs in both: it reads every public page (with the
query parameters a stranger might try), the audit JSON and bundle, signs in
the target's name with the target's address and with its own, confirms what
reaches its own mailbox, checks its receipts, waits for the next batch and
reads everything again; a phished organiser session adds the target on
paper. Everything it read must be identical once random secrets (receipt
codes, tokens, CSRF tokens, hashes, shuffled log positions) are scrubbed.
"""

import dataclasses
import difflib
import re
from datetime import UTC, datetime

import pytest
from helpers import (
    ORGANISER_EMAIL,
    ORGANISER_PASSWORD,
    POSTGRES_URL,
    Browser,
    Clock,
    OrganiserActions,
    Signer,
    make_petition,
    receipt_from,
    reset_postgres,
)

from signing import create_app, db, keyring, migrations
from signing.ledger import accounts

TARGET = Signer(name="Clara Cheung", postcode="S1 2HE", email="clara.cheung@example.org")
DECOY = Signer(name="Dev Patel", postcode="S1 4DP", email="dev.patel@example.net")
STRANGER_OWN = "prober@prober-catchall.example"
STRANGER_SECOND = "second@prober-catchall.example"
OTHERS = [Signer(name=f"Someone {chr(65 + i)} Else", email=f"other{i}@example.org") for i in range(3)]
START = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
STATES = ["absent", "pending_just_mailed", "pending_mailed_long_ago", "counted_online", "counted_paper", "withdrawn"]
# The decoy lives in the target's postcode district: totals by district are public aggregates
# (suppressed below a threshold), so the worlds differ only in WHO, not where.


@dataclasses.dataclass
class World:
    app: object
    browser: Browser
    clock: Clock

    @property
    def services(self):
        return self.app.extensions["countersign"]


def build_world(base_config, path, mailbox):
    path.mkdir(mode=0o700)
    keyring.create_missing(f"{path}/master.key", f"{path}/log.key")
    if POSTGRES_URL:
        reset_postgres(POSTGRES_URL)
    else:
        db.open_database(f"sqlite:///{path}/countersign.db")
        migrations.migrate_to_latest()
    app = create_app({**base_config, "INSTANCE_PATH": str(path), "CONFIRM_RESEND_SECONDS": 300})
    clock = Clock(START)
    app.extensions["countersign"] = dataclasses.replace(app.extensions["countersign"], clock=clock)
    # The scheduler runs only when the script says so: the stranger decides when to look.
    browser = Browser(app.test_client(), mailbox, app, scheduler=False)
    with db.database.connection_context():
        organiser = accounts.add_organiser(app.extensions["countersign"], ORGANISER_EMAIL, ORGANISER_PASSWORD)
    make_petition(app.extensions["countersign"], "test", organiser=organiser.id)
    return World(app, browser, clock)


def confirm_latest(world, address):
    link = world.browser.mailbox.to(address)[-1].link
    return world.browser.confirm(link)


def put_in_state(world, person, state):
    """Other signers, then ``person`` in ``state``; everything before the stranger arrives is published."""
    browser, mailbox = world.browser, world.browser.mailbox
    for other in OTHERS:
        browser.sign("test", other)
        confirm_latest(world, other.email)
    if state in ("pending_just_mailed", "pending_mailed_long_ago"):
        browser.sign("test", person)
        assert mailbox.to(person.email), "the pending signer was mailed"
    elif state in ("counted_online", "withdrawn"):
        browser.sign("test", person)
        code = receipt_from(confirm_latest(world, person.email))
        if state == "withdrawn":
            world.clock.advance(minutes=15)
            browser.publish()
            browser.withdraw("test", code)
    elif state == "counted_paper":
        auth = OrganiserActions(browser)
        assert auth.login().status_code == 302
        browser.submit(
            "/organiser/p/test", {"name": person.name, "postcode": person.postcode}, action="/organiser/p/test/paper"
        )
        auth.logout()
    world.clock.advance(minutes=15 if state == "pending_mailed_long_ago" else 1)
    browser.publish()
    # The stranger arrives with a fresh browser: no cookie of the setup's.
    browser.client = world.app.test_client()


# --- what the stranger reads, scrubbed of random secrets ---------------------

SCRUB = [
    # Every form's CSRF token, the language switch's included.
    (re.compile(r'name="csrf_token"[^>]*?value="[^"]+"'), 'name="csrf_token" value="<csrf>"'),
    (re.compile(r"[A-Z2-7]{4}(?:-[A-Z2-7]{2,4}){6}"), "<receipt>"),
    (re.compile(r"/confirm/[A-Za-z0-9_-]+"), "/confirm/<token>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<hex>"),
    (re.compile(r"[A-Za-z0-9+/]{40,}={0,2}"), "<b64>"),
    # The signer's own log position: the batch is shuffled, so it is random.
    (re.compile(r"entry [\d,]+ of the public log"), "entry <n> of the public log"),
    (re.compile(r'"index": ?\d+'), '"index": <n>'),
]
VOLATILE_HEADERS = {"Date", "Set-Cookie", "Content-Length"}


def scrub(text):
    for pattern, replacement in SCRUB:
        text = pattern.sub(replacement, text)
    return text


def seen(response):
    headers = [(k, scrub(v)) for k, v in response.headers.to_wsgi_list() if k not in VOLATILE_HEADERS]
    body = scrub(response.get_data(as_text=True))
    if "audit/bundle" in (response.request.path if response.request else ""):
        body = "\n".join(sorted(body.splitlines()))  # leaves of a batch are shuffled
    return (response.status_code, headers, body)


PUBLIC_PAGES = [
    "/",
    "/p/test",
    "/p/test?before=1",
    "/p/test?before=3",
    "/p/test?before=999999",
    "/p/test?before=x",
    "/p/test/sign",
    "/p/test/receipt",
    "/p/test/totals",
    "/p/test/totals.csv",
    "/p/test/certificate",
    "/audit/key",
    "/p/test/audit/key",
    "/p/test/audit/heads",
    "/p/test/audit/head/1",
    "/p/test/audit/head/4",
    "/p/test/audit/leaves?start=0&end=10",
    "/p/test/audit/proof/consistency?first=1&second=4",
    "/p/test/audit/proof/inclusion?index=0&size=4",
    "/p/test/audit/bundle",
]


def read_everything(browser, label):
    return {f"{label} {path}": seen(browser.client.get(path)) for path in PUBLIC_PAGES}


def stranger_script(world):
    """Everything the stranger can read, in order, as comparable values."""
    browser, mailbox, clock = world.browser, world.browser.mailbox, world.clock
    views = read_everything(browser, "before")
    # The target's whole identity, their own address included: the answer page.
    views["sign as the target"] = seen(browser.sign("test", TARGET))
    views["sign as the target again"] = seen(browser.sign("test", TARGET))
    # The target's name and postcode with the stranger's own address, then confirmed.
    own = Signer(name=TARGET.name, postcode=TARGET.postcode, email=STRANGER_OWN)
    views["sign as the target, own address"] = seen(browser.sign("test", own))
    confirmed = confirm_latest(world, STRANGER_OWN)
    views["confirm"] = seen(confirmed)
    code = receipt_from(confirmed)
    views["receipt while waiting"] = seen(browser.check_receipt("test", code))
    views["sign as self"] = seen(browser.sign("test", Signer(name="Pat Prober", email=STRANGER_SECOND)))
    # The next batch, and everything again.
    clock.advance(minutes=15)
    browser.publish()
    browser.deliver()
    views.update(read_everything(browser, "after"))
    views["receipt after the batch"] = seen(browser.check_receipt("test", code))
    proof = browser.submit("/p/test/receipt", {"receipt": code}, action="/p/test/receipt/proof")
    views["proof"] = seen(proof)
    # Mail that reached addresses the stranger controls.
    views["own mail"] = [
        (d.recipients, scrub(d.subject), scrub(d.body))
        for d in mailbox.deliveries
        if set(d.recipients) & {STRANGER_OWN, STRANGER_SECOND}
    ]
    return views


def organiser_script(world):
    """A phished organiser session adds the target on paper, then reads what it can."""
    browser, clock = world.browser, world.clock
    views = {}
    auth = OrganiserActions(browser)
    auth.login()
    views["organiser adds the target on paper"] = seen(
        browser.submit(
            "/organiser/p/test", {"name": TARGET.name, "postcode": TARGET.postcode}, action="/organiser/p/test/paper"
        )
    )
    views["organiser names"] = seen(browser.client.get("/organiser/p/test/names"))
    clock.advance(minutes=15)
    browser.publish()
    views["organiser page after the batch"] = seen(browser.client.get("/organiser/p/test"))
    views.update(read_everything(browser, "after paper"))
    auth.logout()
    return views


def difference(first, second):
    def lines_of(value):
        if isinstance(value, tuple):
            return [str(value[0]), *map(str, value[1]), *value[2].splitlines()]
        return str(value).splitlines()

    lines = [lines_of(part) for part in (first, second)]
    return "\n".join(list(difflib.unified_diff(*lines, "target", "decoy", lineterm=""))[:40])


@pytest.mark.parametrize("state", STATES)
def test_a_stranger_reads_the_same_whether_the_target_or_someone_else_is_in_state(state, tmp_path, app_config, mailbox):
    views, organiser_views = {}, {}
    for who, person in (("target", TARGET), ("decoy", DECOY)):
        mailbox.clear()
        world = build_world(app_config, tmp_path / who, mailbox)
        try:
            put_in_state(world, person, state)
            mailbox.deliveries[:] = [d for d in mailbox.deliveries if set(d.recipients) & {STRANGER_OWN}]
            views[who] = stranger_script(world)
            organiser_views[who] = organiser_script(world)
        finally:
            if not db.database.is_closed():
                db.database.close()
    target, decoy = views["target"], views["decoy"]
    assert target.keys() == decoy.keys()
    for key in target:
        assert target[key] == decoy[key], f"{state}: what the stranger reads differs at {key!r}:\n" + difference(
            target[key], decoy[key]
        )
    # The organiser is told "received 1" whatever the target's state, and so is
    # every page up to the batch. The batch itself is the one residual
    # (THREAT_MODEL.md R9): paper-to-paper duplicates are refused when settled,
    # so one count of difference, once, and only for a target on paper.
    for key in organiser_views["target"]:
        if state == "counted_paper" and key.startswith(("after paper", "organiser page after")):
            continue
        assert organiser_views["target"][key] == organiser_views["decoy"][key], f"{state}: organiser sees {key!r}"
    # The script did reach the interesting places.
    assert target["after /p/test"][0] == 200 and target["own mail"]
    assert "Counted." in target["receipt after the batch"][2]
