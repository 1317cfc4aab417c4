"""Countersign: the Flask application."""

from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from crypto.keys import derive_subkey
from crypto.normalise import DEFAULT_DOTLESS_DOMAINS
from crypto.tags import Argon2Params

from . import background, db, keyring, logging_setup, mail, serving, web
from . import config as config_module
from .ledger import Services, checkpoints
from .ledger.throttle import HostSlots, TagThrottle


def _template_folder():
    # Installed, templates ship inside the package; in a checkout they are
    # the top-level templates/ folder.
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if (candidate / "base.html").is_file():
            return str(candidate)
    raise RuntimeError("templates folder not found; reinstall countersign")


def create_app(config=None):
    """Build the app. ``config`` overrides every other source (used by tests)."""
    settings = config_module.load(config)
    app = Flask(__name__, instance_path=settings["INSTANCE_PATH"], template_folder=_template_folder())
    app.config.update(settings)
    logging_setup.init_app(app)

    keys = keyring.load(app.config["MASTER_KEY_FILE"], app.config["LOG_KEY_FILE"])
    app.config["SECRET_KEY"] = derive_subkey(keys.master_key, "web-session")
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=not app.config["DEVELOPMENT"],
        PERMANENT_SESSION_LIFETIME=timedelta(hours=2),
        # The cookie goes out only when the session changes (organiser pages
        # touch it on every request), never on a public page or a static file
        # that a shared cache may keep and hand to someone else.
        SESSION_REFRESH_EACH_REQUEST=False,
        WTF_CSRF_TIME_LIMIT=2 * 3600,
    )
    app.extensions["countersign"] = Services(
        keyring=keys,
        publish_interval=timedelta(seconds=app.config["PUBLISH_INTERVAL_SECONDS"]),
        scheduled_publishing=app.config["BACKGROUND_SENDER"],
        min_batch=max(1, app.config["MIN_BATCH"]),
        dotless_domains=DEFAULT_DOTLESS_DOMAINS | frozenset(app.config["DOTLESS_EMAIL_DOMAINS"].lower().split()),
        argon2=Argon2Params(
            time_cost=app.config["ARGON2_TIME_COST"],
            memory_kib=app.config["ARGON2_MEMORY_KIB"],
            parallelism=app.config["ARGON2_PARALLELISM"],
        ),
        mailer=mail.from_config(app.config),
        confirm_ttl=timedelta(seconds=app.config["CONFIRM_TOKEN_TTL_SECONDS"]),
        resend_interval=timedelta(seconds=app.config["CONFIRM_RESEND_SECONDS"]),
        password_hasher=PasswordHasher(
            time_cost=app.config["PASSWORD_HASH_TIME_COST"],
            memory_cost=app.config["PASSWORD_HASH_MEMORY_KIB"],
            parallelism=app.config["PASSWORD_HASH_PARALLELISM"],
        ),
        log_origin=checkpoints.origin_prefix(app.config),
        witnesses=checkpoints.parse_witnesses(app.config["WITNESSES"]),
        witness_timeout=float(app.config["WITNESS_TIMEOUT_SECONDS"]),
        throttle=TagThrottle(
            app.config["TAG_CONCURRENCY"] or serving.cpu_count(),
            app.config["TAG_WAIT_SECONDS"],
            host=HostSlots(app.config["TAG_SLOTS_DIR"], serving.cpu_count()) if app.config["TAG_SLOTS_DIR"] else None,
        ),
    )

    if app.config["PROXY_COUNT"]:
        # Scheme and host as the TLS-terminating proxy saw them, so Secure
        # cookies and absolute URLs are right. The client address it yields is
        # for rate limits only (as a keyed hash), never logged or stored.
        count = app.config["PROXY_COUNT"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count, x_port=count, x_prefix=count)

    db.init_app(app)
    web.init_app(app)
    background.init_app(app)
    return app
