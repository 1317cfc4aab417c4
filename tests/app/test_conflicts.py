"""A name already taken (a petition's slug, an organiser's address) is found without a failing INSERT.

The INSERT says ON CONFLICT DO NOTHING, so PostgreSQL has no failed
statement to write to its log (tests/app/test_postgres_log.py reads it); the
ledger answers with its own refusal and the first row is untouched.
"""

import pytest
from click.testing import CliRunner
from helpers import make_petition

from signing import db, ledger
from signing.cli import main as cli
from signing.ledger import accounts
from signing.models import Organiser, Petition


def test_taken_slug_is_refused_and_the_first_petition_kept(services):
    first = make_petition(services, "taken", title="The first")
    with db.database.connection_context(), pytest.raises(ledger.SlugTaken):
        ledger.create_petition(services, slug="taken", title="The second", body="Again.")
    with db.database.connection_context():
        assert [(p.id, p.title) for p in Petition.select()] == [(first.id, "The first")]


def test_taken_slug_from_the_command_line_is_one_line(services, instance_path, monkeypatch):
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    make_petition(services, "taken")
    result = CliRunner().invoke(cli, ["petition", "create", "taken", "--title", "Again", "--body", "Again."])
    assert result.exit_code == 1
    assert result.output.strip() == "signing: a petition called 'taken' already exists"


def test_taken_organiser_address_is_refused_and_the_first_account_kept(services):
    with db.database.connection_context():
        first = accounts.add_organiser(services, "Ann@Campaign.example", "a long enough password")
        with pytest.raises(ledger.OrganiserExists):
            accounts.add_organiser(services, "ann@campaign.example", "another long password", is_operator=True)
        assert [(o.id, o.is_operator) for o in Organiser.select()] == [(first.id, False)]
