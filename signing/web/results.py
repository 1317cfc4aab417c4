"""Published results: totals with small cells suppressed, and the certificate."""

import csv
import io

from flask import Blueprint, abort, current_app, make_response, render_template

from .. import ledger
from ..ledger import logstore, witnessing
from ..ledger.totals import totals as compute_totals
from .lookup import cacheable, petition_or_404, services

bp = Blueprint("results", __name__)


RESULTS_MAX_AGE_SECONDS = 60


def published(body, mimetype="text/html"):
    response = make_response(body)
    response.mimetype = mimetype
    return cacheable(response, RESULTS_MAX_AGE_SECONDS)


@bp.get("/p/<slug>/totals")
def totals(slug):
    petition = petition_or_404(slug)
    figures = compute_totals(petition, current_app.config["SMALL_CELL_THRESHOLD"])
    return published(render_template("results/totals.html", petition=petition, totals=figures))


@bp.get("/p/<slug>/totals.csv")
def totals_csv(slug):
    petition = petition_or_404(slug)
    figures = compute_totals(petition, current_app.config["SMALL_CELL_THRESHOLD"])
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["table", "label", "signatures"])
    writer.writerow(["overall", "all", figures.overall])
    for channel, count in sorted(figures.by_channel.items()):
        writer.writerow(["channel", channel, count])
    fewer = f"fewer than {figures.threshold}"
    for table, breakdown in (("district", figures.by_district), ("day", figures.by_day)):
        if breakdown.withheld:
            writer.writerow([table, "all", "withheld"])
        for cell in breakdown.cells:
            shown = {"shown": cell.value, "fewer_than": fewer}.get(cell.state, "withheld")
            writer.writerow([table, cell.label, shown])
    response = published(out.getvalue(), "text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{petition.slug}-totals.csv"'
    return response


@bp.get("/p/<slug>/certificate")
def certificate(slug):
    petition = petition_or_404(slug)
    try:
        figures = ledger.certificate(services(), petition)
    except ledger.PetitionNotClosed:
        abort(404)
    witnessed = witnessing.summary(services(), petition)
    return published(render_template("results/certificate.html", certificate=figures, witnessed=witnessed))


@bp.get("/p/<slug>/audit")
def audit_page(slug):
    """The latest signed count in words, and how to check it: the JSON under /audit/ is for tools."""
    petition = petition_or_404(slug)
    row = logstore.latest_head(petition.id)
    page = render_template(
        "results/audit.html",
        petition=petition,
        head=logstore.signed_head(row, petition.slug),
        published_at=row.published_at,
        key_id=services().keyring.log_key_id,
    )
    return published(page)
