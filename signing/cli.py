"""The ``signing`` command: init, demo, petition create, publish.

Each command builds the app itself (rather than Flask's FlaskGroup), because
``init`` must create the keys that ``create_app`` refuses to start without.
"""

import logging
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

import click
from peewee import DatabaseError, ImproperlyConfigured, InterfaceError
from playhouse.pool import MaxConnectionsExceeded
from werkzeug.serving import WSGIRequestHandler, run_simple

from crypto import sealed
from crypto.errors import CryptoError

from . import background, calibration, create_app, db, keyring, ledger, logging_setup, migrations, paper_csv, serving
from . import config as config_module
from .ledger import accounts, contacts

DEMO_SLUG = "demo"
DEMO_PETITION = {
    "title": "Make our council's e-petitions safe to sign",
    "body": (
        "The council's e-petition site prints the name of everyone who signs. People who are watched "
        "or harassed by a foreign government cannot sign in public, so their voices go uncounted.\n\n"
        "We ask the council to accept petitions signed through a service that counts every signature, "
        "rejects duplicates and can be audited, without publishing who signed."
    ),
    "eligibility": "Anyone who lives, works or studies in the council's area may sign.",
    "title_zh": "讓市議會的網上請願可以安全聯署",
    "body_zh": (
        "市議會的網上請願網站會列出每一位聯署人的姓名。受到外國政府監視或騷擾的人無法公開聯署，"
        "他們的聲音因此沒有被計算在內。\n\n"
        "我們要求市議會接受經由另一類服務收集的聯署：這類服務會計算每一個聯署、拒絕重複聯署，"
        "並且可供審核，但不會公開誰曾經聯署。"
    ),
    "eligibility_zh": "任何在市議會轄區內居住、工作或讀書的人士均可聯署。",
}


# A confirmation token in a path is as good as the signer's mailbox: never logged.
CONFIRM_TOKEN_RE = re.compile(r"(/confirm/)[^\s/?#'\"]+")


def redact_tokens(text):
    return CONFIRM_TOKEN_RE.sub("\\1…", text)


class QuietRequestHandler(WSGIRequestHandler):
    """The development server's request log, minus the client address and any token."""

    def log(self, type, message, *args):  # noqa: A002 -- werkzeug's signature
        logging.getLogger("werkzeug").info(redact_tokens(message % args if args else message))

    def log_request(self, code="-", size="-"):
        path = self.path.split("?", 1)[0]
        self.log("info", "%s %s %s", self.command, path, code)


class CommandError(click.ClickException):
    """One line on stderr, exit status 1: what went wrong and what to do."""

    def show(self, file=None):
        click.echo(f"signing: {self.format_message()}", err=True)


# Failures of the database or its driver: the operator's to fix, not a bug.
DATABASE_FAILURES = (DatabaseError, InterfaceError, MaxConnectionsExceeded)
NO_TABLES_RE = re.compile(r"no such table|relation .* does not exist")


def database_problem(error):
    """One line for a database failure, naming its first cause.

    A failed statement can be followed by a failed rollback ("cannot rollback
    - no transaction is active" once SQLite found the disk full), which would
    otherwise hide what happened. Only the first line: later ones may quote
    the statement.
    """
    cause = error.__context__
    while cause is not None:  # peewee's errors alternate with the driver's in the chain
        if isinstance(cause, DATABASE_FAILURES):
            error = cause
        cause = cause.__context__
    lines = str(error).strip().splitlines()
    text = lines[0] if lines else type(error).__name__
    if NO_TABLES_RE.search(text):
        return "the database has no tables yet; run `signing init` first"
    return f"database: {text}"


class Commands(click.Group):
    """Every command: a setting or a database the operator must fix ends in one line, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except config_module.ConfigError as error:
            raise CommandError(f"configuration: {error}") from None
        except DATABASE_FAILURES as error:
            raise CommandError(database_problem(error)) from None
        except ImproperlyConfigured as error:
            raise CommandError(f"database: {error} (for PostgreSQL: pip install 'countersign[postgresql]')") from None
        except OSError as error:
            # A folder or file the operator named that cannot be made or read (permissions, full disk).
            where = f"{error.filename}: " if error.filename else ""
            raise CommandError(f"{where}{error.strerror or error}") from None


@contextmanager
def app_context(overrides=None):
    try:
        app = create_app(overrides)
    except CryptoError as error:
        raise CommandError(str(error)) from None
    except ValueError as error:
        raise CommandError(f"configuration: {error}") from None
    with app.app_context(), db.database.connection_context():
        check_master_key(app.config["MASTER_KEY_FILE"], app.extensions["countersign"].keyring)
        yield app


def check_master_key(master_key_file, keys):
    """Refuse to go on with a master key that does not open the petitions' keys."""
    refused = ledger.petitions_the_master_key_cannot_open(keys)
    if refused:
        named = ", ".join(refused[:3]) + (f" and {len(refused) - 3} more" if len(refused) > 3 else "")
        raise CommandError(
            f"the master key {master_key_file} does not open the keys of petition(s) {named}: "
            "it is another instance's; put this instance's master.key back"
        )


def initialise(settings):
    """Create the instance folder, missing keys and missing tables; idempotent.

    The database is reached first, so a wrong URL or a database that is down
    leaves no key files behind.
    """
    Path(settings["INSTANCE_PATH"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    db.open_database(settings["DATABASE_URL"])
    with db.database.connection_context():
        pass
    created = keyring.create_missing(settings["MASTER_KEY_FILE"], settings["LOG_KEY_FILE"])
    try:
        master_key = keyring.load(settings["MASTER_KEY_FILE"], settings["LOG_KEY_FILE"]).master_key
        migrations.migrate_to_latest(master_key=master_key)
    except (migrations.SchemaVersionError, CryptoError) as error:
        raise CommandError(str(error)) from None
    try:
        keys = keyring.load(settings["MASTER_KEY_FILE"], settings["LOG_KEY_FILE"])
    except CryptoError as error:
        raise CommandError(str(error)) from None
    with db.database.connection_context():
        check_master_key(settings["MASTER_KEY_FILE"], keys)
    return created


@click.group(cls=Commands)
def main():
    """Countersign: petitions that count people without recording who they are."""
    logging_setup.configure(logging.INFO)


@main.command()
def init():
    """Create the keys and the database schema (idempotent)."""
    settings = config_module.load()
    for path in initialise(settings):
        click.echo(f"created {path} (keep it secret, keep a backup)")
    click.echo(
        f"database ready at {redacted_url(settings['DATABASE_URL'])} (schema version {migrations.SCHEMA_VERSION})"
    )


def redacted_url(url):
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        rest = "…@" + rest.rsplit("@", 1)[1]
    return scheme + sep + rest


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535))
def demo(host, port):
    """Initialise if needed, add a sample petition, and serve it for trying out."""
    overrides = {"DEVELOPMENT": True}
    settings = config_module.load()
    if "SIGNING_PUBLISH_INTERVAL_SECONDS" not in os.environ:
        # In the demo a signature shows in the count at once (the next moment,
        # from the background thread); production batches.
        overrides["PUBLISH_INTERVAL_SECONDS"] = 0
    if "SIGNING_MIN_BATCH" not in os.environ:
        overrides["MIN_BATCH"] = 1
    if "SIGNING_MAIL_BACKEND" not in os.environ:
        # Confirmation mail is printed here, link included, to confirm by hand.
        overrides["MAIL_BACKEND"] = "console"
    initialise(settings)
    with app_context(overrides) as app:
        if ledger.petition_by_slug(DEMO_SLUG) is None:
            ledger.create_petition(app.extensions["countersign"], slug=DEMO_SLUG, **DEMO_PETITION)
    click.echo(f"Countersign demo: http://{host}:{port}/p/{DEMO_SLUG}  (Ctrl-C to stop)")
    run_simple(host, port, app, request_handler=QuietRequestHandler, threaded=True)


@main.command()
@click.option("--bind", default=serving.DEFAULT_BIND, show_default=True, help="Address to listen on (behind a proxy).")
@click.option("--workers", type=click.IntRange(1, 512), default=None, help="Worker processes [default: cores + 1].")
def serve(bind, workers):
    """Serve in production with gunicorn (signing/gunicorn_conf.py), behind a TLS proxy."""
    with app_context() as app:
        try:
            migrations.check_version()
        except migrations.SchemaVersionError as error:
            raise CommandError(str(error)) from None
        memory_kib = ledger.largest_argon2_memory_kib(app.config["ARGON2_MEMORY_KIB"])
    environment = serving.malloc_environment(memory_kib) | serving.workers_environment(workers)
    serving.exec_gunicorn(serving.gunicorn_argv(bind), environment)


@main.command()
@click.option("--target-ms", type=click.FloatRange(min=0.01), default=20.0, show_default=True, help="Time per tag.")
@click.option(
    "--max-memory-kib", type=click.IntRange(8, 4 * 1024 * 1024), default=calibration.OWASP_MEMORY_KIB, show_default=True
)
@click.option("--seconds", type=click.FloatRange(min=0.1), default=2.0, show_default=True, help="Throughput run.")
def calibrate(target_ms, max_memory_kib, seconds):
    """Measure Argon2id here; recommend a cost and show the signatures/s it allows."""
    click.echo(calibration.describe(calibration.calibrate(target_ms, max_memory_kib, seconds)))


@main.group()
def petition():
    """Manage petitions (operator)."""


@petition.command("create")
@click.argument("slug")
@click.option("--title", required=True)
@click.option("--body", required=True, help="The petition text; blank lines separate paragraphs.")
@click.option("--eligibility", default="", help="Who may sign.")
@click.option("--email/--no-email", "require_email", default=True, show_default=True)
@click.option("--postcode/--no-postcode", "require_postcode", default=True, show_default=True)
@click.option("--areas", default="", help="Allowed postcode areas, e.g. 'S DN'; empty = anywhere.")
@click.option("--display-names/--no-display-names", "display_names_allowed", default=True, show_default=True)
@click.option(
    "--at-risk",
    "at_risk",
    is_flag=True,
    help="For signers at risk: refused with --no-email, which lets anyone knowing a name and postcode test it.",
)
@click.option("--draft", is_flag=True, help="Create it unpublished.")
def petition_create(slug, draft, areas, **fields):
    """Create a petition with its own key, salt and empty signed log."""
    with app_context() as app:
        try:
            created = ledger.create_petition(
                app.extensions["countersign"],
                slug=slug,
                status=ledger.DRAFT if draft else ledger.OPEN,
                allowed_areas=" ".join(areas.upper().split()),
                **fields,
            )
        except ledger.InvalidPetition as error:
            raise CommandError(str(error)) from None
        except ledger.SlugTaken:
            raise CommandError(f"a petition called {slug!r} already exists") from None
        click.echo(f"created petition {created.slug} ({created.status})")


@main.command()
@click.argument("slugs", nargs=-1)
@click.option("--now", "force", is_flag=True, help="Publish even if the interval has not passed.")
def publish(slugs, force):
    """Append waiting signatures to the logs as shuffled batches (for cron); drop expired pending ones."""
    with app_context() as app:
        services = app.extensions["countersign"]
        _expire(services)
        petitions = ledger.published_petitions(slugs)
        if slugs:
            missing = set(slugs) - {p.slug for p in petitions}
            if missing:
                raise CommandError("no such petition: " + ", ".join(sorted(missing)))
        for item in petitions:
            head = ledger.publish(services, item, force=force)
            if head is not None:
                click.echo(f"{item.slug}: log size {head.size}, count {head.count}")
        background.send_due(app)


@main.command("send-mail")
def send_mail():
    """Send the mail waiting in the outbox (for cron, where BACKGROUND_SENDER is off)."""
    with app_context() as app:
        sent, failed = background.send_due(app)
        if sent or failed:
            click.echo(f"sent {sent} message(s); {failed} will be retried")


@main.command()
def expire():
    """Delete pending signatures whose confirmation link has expired (`publish` does it too)."""
    with app_context() as app:
        _expire(app.extensions["countersign"])


def _expire(services):
    deleted = ledger.expire_pending(services)
    if deleted:
        click.echo(f"deleted {deleted} unconfirmed signature(s) whose link expired")


def _petition_or_fail(slug):
    found = ledger.petition_by_slug(slug)
    if found is None:
        raise CommandError(f"no such petition: {slug}")
    return found


@petition.command("open")
@click.argument("slug")
def petition_open(slug):
    """Open a draft petition for signatures."""
    with app_context():
        try:
            ledger.open_petition(_petition_or_fail(slug))
        except ledger.PetitionNotDraft:
            raise CommandError(f"{slug} is not a draft") from None
        click.echo(f"{slug} is open")


@petition.command("close")
@click.argument("slug")
def petition_close(slug):
    """Close a petition and publish its final batch."""
    with app_context() as app:
        try:
            ledger.close_petition(app.extensions["countersign"], _petition_or_fail(slug))
        except ledger.PetitionNotOpen:
            raise CommandError(f"{slug} is not open") from None
        click.echo(f"{slug} is closed; final count {ledger.current_count(_petition_or_fail(slug))}")


@main.group()
def organiser():
    """Manage organiser accounts (operator)."""


@organiser.command("add")
@click.argument("email")
@click.option("--operator", is_flag=True, help="May see and manage every petition.")
@click.password_option(help="Prompted for, never echoed, if not given.")
def organiser_add(email, operator, password):
    """Create an organiser account; the password is prompted for and never echoed."""
    with app_context() as app:
        try:
            accounts.add_organiser(app.extensions["countersign"], email, password, is_operator=operator)
        except accounts.AccountError as error:
            raise CommandError(str(error)) from None
        click.echo(f"organiser {accounts.normalise_email(email)} added" + (" (operator)" if operator else ""))


@organiser.command("totp-reset")
@click.argument("email")
def organiser_totp_reset(email):
    """Turn two-factor sign-in off for an organiser who lost their app and codes (and unlock the account).

    Check who is asking by some other channel first: this is exactly what
    someone who stole the password would ask for.
    """
    with app_context():
        if not accounts.reset_two_factor(email):
            raise CommandError(f"no organiser {accounts.normalise_email(email)}")
        click.echo(
            f"two-factor sign-in is off for {accounts.normalise_email(email)}; "
            "their sessions have ended and they can log in with the password alone"
        )


@main.command("import")
@click.argument("slug")
@click.argument("csv_file", type=click.File("rb"))
def import_paper(slug, csv_file):
    """Add paper signatures from a CSV file (name, postcode, optional email; header row)."""
    with app_context() as app:
        services = app.extensions["countersign"]
        target = _petition_or_fail(slug)
        try:
            ledger.require_open(target)
        except ledger.PetitionNotOpen:
            raise CommandError(f"{slug} is not open: paper signatures can be added only while it is open") from None
        try:
            identities = paper_csv.parse_paper_csv(services, target, csv_file.read())
        except paper_csv.PaperFileError as error:
            for problem in error.errors:
                click.echo(f"line {problem.line}: {problem.reason}", err=True)
            rejected = len(error.errors)
            raise CommandError(f"the file was rejected whole ({rejected} bad line(s)); nothing was added") from None
        with click.progressbar(length=len(identities), label="computing tags", file=sys.stderr) as bar:
            result = ledger.add_paper_signatures(services, target, identities, progress=bar.update)
        click.echo(f"received {result.received}, rejected 0; they count from the next batch, each person once")


@main.command()
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--wait", type=click.FloatRange(min=0), default=ledger.SHRED_WAIT_SECONDS, show_default=True,
    help="Seconds to wait for readers holding an old copy of the key.",
)
def shred(slug, yes, wait):
    """Destroy a closed petition's key: nobody can ever test who signed it again."""
    with app_context() as app:
        target = _petition_or_fail(slug)
        if not yes and target.status != ledger.SHREDDED:
            click.confirm(f"Destroy the key of {slug} for ever?", abort=True)
        try:
            places = ledger.shred(app.extensions["countersign"], target, wait_seconds=wait)
        except ledger.PetitionNotClosed:
            raise CommandError(f"{slug} is not closed: close it first") from None
        except ledger.ShredIncomplete as error:
            raise CommandError(
                f"{slug}: NOT FINISHED: the key is removed from the petition, but {error}; "
                f"end that reader (or stop the service briefly) and run `signing shred {slug}` again"
            ) from None
        click.echo(
            f"{slug}: key destroyed and proven absent from {', '.join(places)}; log, totals and certificate remain"
        )
        click.echo(
            "backups and database copies made before now still hold the key: "
            "run `signing rotate-master-key` (README, Backups and shredding)"
        )


@main.command("rotate-master-key")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def rotate_master_key(yes):
    """Move every stored key under a new master key and destroy the old one (after shredding).

    Stop `signing serve` on every host first; afterwards copy the new master
    key file to every host (README, "Backups and shredding").
    """
    settings = config_module.load()
    if not yes:
        click.confirm("Is `signing serve` stopped on every host?", abort=True)
    db.open_database(settings["DATABASE_URL"])
    try:
        with db.database.connection_context():
            migrations.check_version()
            keyring.rotate_master_key(settings["MASTER_KEY_FILE"], ledger.rewrap_stored_keys)
    except (migrations.SchemaVersionError, CryptoError) as error:
        raise CommandError(str(error)) from None
    click.echo(
        f"new master key in {settings['MASTER_KEY_FILE']}, the old one overwritten; "
        "copy this file to every host, replace the master key in your key backup, destroy every copy of "
        "the old one, and take a fresh database backup now (older ones cannot compute tags any more)"
    )


@main.group()
def keys():
    """Keys kept by people, not by the server."""


@keys.command("organiser")
@click.argument("private_key_file", type=click.Path(dir_okay=False, writable=True))
def keys_organiser(private_key_file):
    """Create an organiser's contact key pair; run it on your own computer.

    The private key is written to PRIVATE_KEY_FILE (mode 0600) and never
    leaves it; paste the printed public key into the petition's settings.
    """
    private_pem, public_raw = sealed.generate_organiser_key()
    try:
        descriptor = os.open(private_key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise CommandError(f"{private_key_file} already exists; choose another name") from None
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(private_pem)
    click.echo(f"private key written to {private_key_file}: keep it safe, it is the only way to read contacts")
    click.echo(f"public key (paste into the petition's settings): {public_raw.hex()}")


@main.command("contacts")
@click.argument("slug")
@click.option("--key", "key_file", required=True, type=click.File("rb"), help="The organiser's private key (PEM).")
def contacts_command(slug, key_file):
    """Print the sealed "keep me informed" addresses of a petition, opened with your private key."""
    try:
        private_key = sealed.load_private_key(key_file.read())
    except CryptoError as error:
        raise CommandError(str(error)) from None
    with app_context():
        addresses, failures = contacts.open_all(_petition_or_fail(slug), private_key)
    for address in addresses:
        click.echo(address)
    if failures:
        click.echo(f"{failures} contact(s) were sealed to another key and could not be opened", err=True)


@main.group()
def witness():
    """A witness (c2sp.org/tlog-witness) for Countersign's logs or any C2SP log."""


def _witness(state, name, logs):
    from .witness import Witness  # the witness needs no instance, database or mail settings

    try:
        return Witness(state, name, logs)
    except (CryptoError, OSError) as error:
        raise CommandError(f"witness: {error}") from None


@witness.command("vkey")
@click.option("--state", required=True, type=click.Path(file_okay=False), help="Folder for its key and SQLite file.")
@click.option("--name", required=True, help='Its key name, e.g. "witness.example.org/w1".')
def witness_vkey(state, name):
    """Create the witness key if needed and print its verifier key (give it to logs and auditors)."""
    from .witness import vkey

    click.echo(vkey(name, _witness(state, name, []).key))


@witness.command("serve")
@click.option("--state", required=True, type=click.Path(file_okay=False), help="Folder for its key and SQLite file.")
@click.option("--name", required=True, help='Its key name, e.g. "witness.example.org/w1".')
@click.option("--log", "logs", multiple=True, required=True, help="Verifier key of a log to witness (repeat).")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8480, show_default=True, type=click.IntRange(1, 65535))
def witness_serve(state, name, logs, host, port):
    """Serve POST /add-checkpoint for the given logs."""
    from .witness import create_witness_app, vkey

    instance = _witness(state, name, logs)
    click.echo(f"witness {vkey(name, instance.key)} on http://{host}:{port}/add-checkpoint", err=True)
    # One process is plenty (a request is a signature check and a SQLite write);
    # its threads wait on SQLite's write lock in turn.
    bind = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    serving.run_in_gunicorn(
        create_witness_app(instance), bind, workers=1, worker_class="gthread", threads=4, graceful_timeout=5
    )


@witness.command("reports")
def witness_reports():
    """List the latest refusals and failures of this instance's witnesses (newest first)."""
    from .ledger import witnessing

    with app_context():
        reports = witnessing.recent_reports(100)
        for report in reports:
            status = "unreachable" if report.status is None else report.status
            click.echo(
                f"{report.at:%Y-%m-%d %H:%M} {report.witness} /p/{report.petition.slug} size {report.size} "
                f"{status}: {report.message}"
            )
    if not reports:
        click.echo("no witness has refused or failed")
