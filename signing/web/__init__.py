"""The web: blueprints, forms, error pages and request plumbing.

Views translate HTTP to one ledger call and back; nothing here decides
whether a signature counts or queries the models.
"""

from . import about, audit, errors, i18n, inputs, public, ratelimit, refill, results, security
from .organiser import views as organiser
from .uploads import InMemoryRequest


def init_app(app):
    app.request_class = InMemoryRequest
    i18n.init_app(app)
    # Before CSRF and forms: a refused request costs nothing further.
    ratelimit.init_app(app)
    inputs.init_app(app)
    security.init_app(app)
    errors.init_app(app)
    for blueprint in (public.bp, audit.bp, results.bp, organiser.bp, about.bp, refill.bp):
        app.register_blueprint(blueprint)
