"""Small helpers every blueprint shares: the services, petition look-up, caching headers."""

from flask import abort, current_app, make_response

from .. import ledger


def services():
    return current_app.extensions["countersign"]


def petition_or_404(slug, description=None):
    """The publicly visible petition at ``slug`` (its dates applied), or a 404."""
    petition = ledger.public_petition(services(), slug)
    if petition is None:
        abort(404, description=description)
    return petition


def no_store(body, status=200):
    """A response that holds a form, a receipt or a token: never cached."""
    response = make_response(body, status)
    response.headers["Cache-Control"] = "no-store"
    return response


def cacheable(response, max_age_seconds, stale_seconds=0):
    """A response anyone may cache briefly: the same for every visitor.

    ``stale_seconds`` lets a cache keep serving the old copy while it fetches
    a new one, so a read storm reaches the app once per cache, not per reader.
    """
    directives = f"public, max-age={max_age_seconds}"
    if stale_seconds:
        directives += f", stale-while-revalidate={stale_seconds}"
    response.headers["Cache-Control"] = directives
    return response
