"""The ``signing`` command: init, demo, petition create, publish.

Each command builds the app itself (rather than Flask's FlaskGroup), because
``init`` must create the keys that ``create_app`` refuses to start without.
"""

import logging
import os
import sys
from contextlib import contextmanager

import click
from werkzeug.serving import WSGIRequestHandler, run_simple

from crypto.errors import CryptoError

from . import config as config_module
from . import create_app, db, keyring, ledger
from .models import DRAFT, OPEN, Petition

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
}


class QuietRequestHandler(WSGIRequestHandler):
    """The development server's request log, minus the client address."""

    def log(self, type, message, *args):  # noqa: A002 -- werkzeug's signature
        logging.getLogger("werkzeug").info(message % args if args else message)

    def log_request(self, code="-", size="-"):
        path = self.path.split("?", 1)[0]
        self.log("info", "%s %s %s", self.command, path, code)


def fail(message):
    click.echo(f"signing: {message}", err=True)
    sys.exit(1)


@contextmanager
def app_context(overrides=None):
    try:
        app = create_app(overrides)
    except CryptoError as error:
        fail(str(error))
    except ValueError as error:
        fail(f"configuration: {error}")
    with app.app_context(), db.database.connection_context():
        yield app


def initialise(settings):
    """Create the instance folder, missing keys and missing tables; idempotent."""
    created = keyring.create_missing(settings["MASTER_KEY_FILE"], settings["LOG_KEY_FILE"])
    db.open_database(settings["DATABASE_URL"])
    db.create_schema()
    return created


@click.group()
def main():
    """Countersign: petitions that count people without recording who they are."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


@main.command()
def init():
    """Create the keys and the database schema (idempotent)."""
    settings = config_module.load()
    for path in initialise(settings):
        click.echo(f"created {path} (keep it secret, keep a backup)")
    click.echo(f"database ready at {redacted_url(settings['DATABASE_URL'])}")


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
        # In the demo a signature shows in the count at once; production batches.
        overrides["PUBLISH_INTERVAL_SECONDS"] = 0
    initialise(settings)
    with app_context(overrides) as app:
        if Petition.get_or_none(Petition.slug == DEMO_SLUG) is None:
            ledger.create_petition(app.extensions["countersign"], slug=DEMO_SLUG, **DEMO_PETITION)
    click.echo(f"Countersign demo: http://{host}:{port}/p/{DEMO_SLUG}  (Ctrl-C to stop)")
    run_simple(host, port, app, request_handler=QuietRequestHandler, threaded=True)


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
@click.option("--draft", is_flag=True, help="Create it unpublished.")
def petition_create(slug, draft, areas, **fields):
    """Create a petition with its own key, salt and empty signed log."""
    with app_context() as app:
        if Petition.get_or_none(Petition.slug == slug) is not None:
            fail(f"a petition called {slug!r} already exists")
        try:
            created = ledger.create_petition(
                app.extensions["countersign"],
                slug=slug,
                status=DRAFT if draft else OPEN,
                allowed_areas=" ".join(areas.upper().split()),
                **fields,
            )
        except ledger.InvalidPetition as error:
            fail(str(error))
        click.echo(f"created petition {created.slug} ({created.status})")


@main.command()
@click.argument("slugs", nargs=-1)
@click.option("--now", "force", is_flag=True, help="Publish even if the interval has not passed.")
def publish(slugs, force):
    """Append waiting signatures to the logs as shuffled batches (for cron)."""
    with app_context() as app:
        services = app.extensions["countersign"]
        petitions = Petition.select().where(Petition.status != DRAFT)
        if slugs:
            petitions = petitions.where(Petition.slug.in_(slugs))
            missing = set(slugs) - {p.slug for p in petitions}
            if missing:
                fail("no such petition: " + ", ".join(sorted(missing)))
        for item in petitions:
            head = ledger.publish(services, item, force=force)
            if head is not None:
                click.echo(f"{item.slug}: log size {head.size}, count {head.count}")
