"""Pages about the service itself: what is kept, what is public, who can see what."""

from flask import Blueprint, current_app, make_response, render_template

from . import pagecache
from .lookup import cacheable

bp = Blueprint("about", __name__)


@bp.get("/privacy")
@pagecache.cached
def privacy():
    config = current_app.config
    page = render_template(
        "about/privacy.html",
        operator_name=config["OPERATOR_NAME"],
        operator_contact=config["OPERATOR_CONTACT"],
        notice_url=config["PRIVACY_NOTICE_URL"],
        threshold=config["SMALL_CELL_THRESHOLD"],
        shown_days=max(1, round(config["CONFIRM_TOKEN_TTL_SECONDS"] / 86400)),
    )
    return cacheable(make_response(page), 60, 600)
