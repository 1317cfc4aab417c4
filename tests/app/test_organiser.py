"""Organisers: accounts, access control, lifecycle, paper, totals, certificate, shredding."""

import dataclasses
import re
import tempfile
from datetime import UTC, date, datetime, timedelta

import pytest
from click.testing import CliRunner
from helpers import ORGANISER_EMAIL, OrganiserActions, Signer, own_petition, sign_online, upload
from helpers import ORGANISER_PASSWORD as PASSWORD

from crypto.audit import verify_bundle
from crypto.errors import InvalidKey
from crypto.keys import PURPOSE_TAGS
from signing import ledger
from signing.cli import main as cli
from signing.ledger import accounts
from signing.models import Organiser, Petition, Signature


def login(browser, email=ORGANISER_EMAIL, password=PASSWORD):
    return OrganiserActions(browser).login(email, password)






def published_count(slug):
    petition = Petition.get(Petition.slug == slug)
    return ledger.current_count(petition)




def received(response):
    """How many signatures the page says were received: never how many were already counted."""
    page = response.get_data(as_text=True)
    assert "skipped" not in page.lower() and "duplicate" not in page.lower()
    return int(re.search(r"Received (\d+) signatures? from this file", page).group(1))


# --- accounts and access ------------------------------------------------------


@pytest.mark.parametrize("path", ["/organiser/", "/organiser/new", "/organiser/p/ours", "/organiser/p/ours/names"])
def test_anonymous_visitors_are_sent_to_log_in(browser, organiser, services, path):
    own_petition(services, organiser)
    response = browser.client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/organiser/login")


def test_wrong_password_and_unknown_account_read_the_same(browser, organiser):
    wrong = login(browser, password="not the password at all")
    unknown = login(browser, email="nobody@campaign.example")
    assert wrong.status_code == unknown.status_code == 400
    message = "do not match an account, or there were too many attempts"
    assert message in wrong.get_data(as_text=True) and message in unknown.get_data(as_text=True)


def test_lockout_after_repeated_failures_even_with_the_right_password(browser, organiser):
    for _ in range(accounts.MAX_FAILED_LOGINS):
        assert login(browser, password="wrong password, again").status_code == 400
    locked = login(browser)
    assert locked.status_code == 400
    assert "too many attempts" in locked.get_data(as_text=True)
    Organiser.update(locked_until=datetime(2000, 1, 1)).execute()
    assert login(browser).status_code == 302


def test_login_starts_a_fresh_session_and_logout_ends_it(browser, organiser):
    with browser.client.session_transaction() as session:
        session["planted"] = "by an attacker"
    assert login(browser).status_code == 302
    with browser.client.session_transaction() as session:
        assert "planted" not in session
        assert session["organiser_id"] == organiser.id
    assert browser.client.get("/organiser/").status_code == 200
    browser.submit("/organiser/", {}, action="/organiser/logout")
    assert browser.client.get("/organiser/").status_code == 302


def test_idle_session_expires(app, signed_in):
    with signed_in.client.session_transaction() as session:
        session["seen"] -= app.config["ORGANISER_IDLE_MINUTES"] * 60 + 1
    assert signed_in.client.get("/organiser/").status_code == 302


def test_password_change_ends_other_sessions(signed_in, organiser, services):
    accounts.change_password(services, organiser, "another long passphrase")
    assert signed_in.client.get("/organiser/").status_code == 302


def test_organiser_sees_and_changes_only_their_own_petitions(signed_in, organiser, services):
    other = accounts.add_organiser(services, "bob@other.example", PASSWORD)
    own_petition(services, organiser, "ours")
    own_petition(services, other, "theirs")
    dashboard = signed_in.client.get("/organiser/").get_data(as_text=True)
    assert "Petition ours" in dashboard and "Petition theirs" not in dashboard
    assert signed_in.client.get("/organiser/p/theirs").status_code == 404
    assert signed_in.client.get("/organiser/p/theirs/edit").status_code == 404
    token = signed_in.csrf("/organiser/p/ours")
    assert signed_in.client.post("/organiser/p/theirs/close", data={"csrf_token": token}).status_code == 404
    assert Petition.get(Petition.slug == "theirs").status == "open"


def test_operator_sees_every_petition(browser, organiser, services):
    accounts.add_organiser(services, "ops@countersign.example", PASSWORD, is_operator=True)
    own_petition(services, organiser, "ours")
    login(browser, email="ops@countersign.example")
    assert browser.client.get("/organiser/p/ours").status_code == 200


def test_cli_adds_an_organiser_with_a_prompted_password(app, instance_path, monkeypatch):
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    result = CliRunner().invoke(cli, ["organiser", "add", "Carol@Campaign.example"], input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert Organiser.get(Organiser.email == "carol@campaign.example").password_hash.startswith("$argon2id$")
    short = CliRunner().invoke(cli, ["organiser", "add", "d@campaign.example"], input="short\nshort\n")
    assert short.exit_code == 1 and "at least 12 characters" in short.output


# --- lifecycle ---------------------------------------------------------------


def petition_form(**overrides):
    data = {
        "slug": "new-one",
        "title": "Safe petitions",
        "body": "Text of the petition.",
        "eligibility": "Residents.",
        "require_postcode": "y",
        "display_names_allowed": "y",
        "allowed_areas": "s dn",
        "thresholds": "100 1000",
    }
    data.update(overrides)
    return data


def test_create_a_draft_then_open_it(signed_in):
    response = signed_in.submit("/organiser/new", petition_form())
    assert response.status_code == 302
    petition = Petition.get(Petition.slug == "new-one")
    assert (petition.status, petition.allowed_areas, petition.require_email) == ("draft", "S DN", False)
    assert signed_in.client.get("/p/new-one").status_code == 404
    signed_in.submit("/organiser/p/new-one", {}, action="/organiser/p/new-one/open")
    assert signed_in.client.get("/p/new-one").status_code == 200


def test_bad_petition_form_is_a_400_with_messages(signed_in):
    response = signed_in.submit(
        "/organiser/new", petition_form(slug="Not A Slug!", opens_on="2026-12-10", closes_on="2026-12-01")
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "lower-case letters" in page and "must not be before the opening date" in page
    assert not Petition.select().where(Petition.slug == "Not A Slug!").exists()


def test_open_petition_keeps_its_text_and_policy(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    changed = signed_in.submit("/organiser/p/ours/edit", petition_form(slug="ours", title="A different promise"))
    assert changed.status_code == 409
    assert Petition.get(Petition.slug == "ours").title == "Petition ours"


def with_clock(app, services, moment):
    app.extensions["countersign"] = dataclasses.replace(services, clock=lambda: moment)
    return app.extensions["countersign"]


def test_petitions_open_and_close_on_their_dates(app, browser, organiser, services):
    today = date(2026, 12, 1)
    own_petition(services, organiser, "scheduled", status="draft", opens_on=today, closes_on=today + timedelta(days=2))
    with_clock(app, services, datetime(2026, 11, 30, 12, tzinfo=UTC))
    assert browser.client.get("/p/scheduled").status_code == 404
    with_clock(app, services, datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
    assert browser.client.get("/p/scheduled").status_code == 200
    sign_online(browser, "scheduled", "Early Bird")
    with_clock(app, services, datetime(2026, 12, 4, 0, 1, tzinfo=UTC))
    page = browser.client.get("/p/scheduled").get_data(as_text=True)
    assert "count is final" in page
    assert Petition.get(Petition.slug == "scheduled").status == "closed"
    assert browser.client.get("/p/scheduled/sign").status_code == 409
    assert published_count("scheduled") == 1


# --- paper signatures --------------------------------------------------------


def test_csv_import_with_bom_counts_each_person_once(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    content = (
        "\ufeffName,Postcode,Email\r\n"
        "Clara Cheung,S1 2HE,\r\n"
        "Wong Tai Sin,S10 2TN,wts@example.net\r\n"
        "CHEUNG clara,s12he,\r\n"  # the same person as line 2
        "\r\n"
    ).encode()
    response = upload(signed_in, "ours", content)
    assert response.status_code == 200
    assert received(response) == 3
    assert published_count("ours") == 0  # settled with the next batch, not before
    signed_in.publish()
    assert published_count("ours") == 2


def test_csv_with_any_bad_row_is_rejected_whole(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    content = b"name,postcode\nClara Cheung,S1 2HE\n!!!,S1 2HE\nAnn Other,NOT A CODE\nBo Li,S1 1AA,extra\n"
    response = upload(signed_in, "ours", content)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Nothing from this file was received" in page and "3 lines were rejected" in page
    for line, reason in (
        (3, "the name is empty or has no letters"),
        (4, "the postcode is not a valid UK postcode"),
        (5, "expected 2 columns, found 3"),
    ):
        assert f"Line {line}: {reason}" in page
    assert "Clara" not in page and "NOT A CODE" not in page
    assert Signature.select().count() == 0


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"", "needs a header row"),
        (b"name,postcode\n", "no signatures"),
        (b"full name,postcode\nA B,S1 2HE\n", "header row must name"),
        (b"name,postcode\n\xff\xfe,S1 2HE\n", "CSV UTF-8 (Comma delimited)"),
    ],
)
def test_unusable_files_are_explained(signed_in, organiser, services, content, reason):
    own_petition(services, organiser, "ours")
    response = upload(signed_in, "ours", content)
    assert response.status_code == 400
    assert reason in response.get_data(as_text=True)


def test_online_then_paper_skips_the_paper_one(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    sign_online(signed_in, "ours", "Clara Cheung")
    assert received(upload(signed_in, "ours", b"name,postcode\nclara cheung,S1 2HE\n")) == 1
    signed_in.publish()
    assert published_count("ours") == 1


def test_paper_then_online_without_email_counts_once(tmp_path, signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    upload(signed_in, "ours", b"name,postcode\nClara Cheung,S1 2HE\nBo Li,S2 4SU\n")
    signed_in.publish()
    assert published_count("ours") == 2
    # Without email, name and postcode are the identity: the online one is a
    # duplicate of the paper one (its receipt leads there), not a second count.
    sign_online(signed_in, "ours", "Cheung Clara")
    assert published_count("ours") == 2
    assert Signature.select().where(Signature.status == "withdrawn").count() == 0
    bundle = signed_in.client.get("/p/ours/audit/bundle").get_data()
    assert verify_bundle(bundle.splitlines()).count == 2


def test_paper_email_matching_an_online_email_is_skipped(signed_in, organiser, services):
    petition = own_petition(services, organiser, "ours", require_email=True)
    identity = ledger.canonical_identity(services, petition, name="X Y", postcode="S1 2HE", email="known@example.org")
    person, email = ledger.compute_tags(services, petition, identity)
    Signature.create(petition=petition, person_tag=person, email_tag=email, status="counted", day=date.today())
    result = upload(signed_in, "ours", b"name,postcode,email\nSomeone Else,S3 7RD,Known@Example.org\n")
    assert received(result) == 1
    signed_in.publish()
    assert published_count("ours") == 1


def test_single_paper_signature_form(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    response = signed_in.submit(
        "/organiser/p/ours", {"name": "Mo Farah", "postcode": "S1 2HE"}, action="/organiser/p/ours/paper"
    )
    assert response.status_code == 303 and response.location.endswith("/organiser/p/ours#paper")
    signed_in.publish()
    assert published_count("ours") == 1
    bad = signed_in.submit(
        "/organiser/p/ours", {"name": "Mo Farah", "postcode": "XX"}, action="/organiser/p/ours/paper"
    )
    assert bad.status_code == 400


def test_uploads_never_touch_the_disk(monkeypatch, signed_in, organiser, services):
    own_petition(services, organiser, "ours")

    def refuse(*args, **kwargs):
        raise AssertionError("an upload was spooled to disk")

    for name in ("TemporaryFile", "SpooledTemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    names = [f"{a}{b}{c} Longfamilyname-Padded Example" for a in letters for b in letters for c in letters[:20]]
    content = ("name,postcode\n" + "".join(f"{name},S1 2HE\n" for name in names)).encode()
    assert len(content) > 520_000  # over werkzeug's 500 KB spool-to-disk limit
    response = upload(signed_in, "ours", content)
    assert response.status_code == 200
    assert received(response) == len(names)


def test_cli_import_reports_and_rejects(app, instance_path, monkeypatch, tmp_path, organiser, services):
    own_petition(services, organiser, "ours")
    monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
    good, bad = tmp_path / "good.csv", tmp_path / "bad.csv"
    good.write_bytes(b"name,postcode\nAnn Lee,S1 2HE\nann lee,S1 2HE\n")
    bad.write_bytes(b"name,postcode\nAnn Lee,nowhere\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["import", "ours", str(good)])
    assert result.exit_code == 0, result.output
    assert "received 2, rejected 0" in result.output
    rejected = runner.invoke(cli, ["import", "ours", str(bad)])
    assert rejected.exit_code == 1
    assert "line 2: the postcode is not a valid UK postcode" in rejected.output
    assert "nowhere" not in rejected.output


# --- moderation, certificate, shredding -------------------------------------------


def test_hidden_display_name_shows_as_anonymous_and_still_counts(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    signed_in.sign("ours", Signer(email=None, display_name="Rude Words"))
    signature = Signature.get(Signature.display_name == "Rude Words")
    assert signature.leaf_index is not None  # named by its log position, never a row id
    signed_in.submit("/organiser/p/ours/names", {}, action=f"/organiser/p/ours/names/{signature.leaf_index}/hide")
    page = signed_in.client.get("/p/ours").get_data(as_text=True)
    assert "Rude Words" not in page and "Anonymous" in page
    assert published_count("ours") == 1
    moderated = Signature.get_by_id(signature.id)
    assert moderated.display_name_hidden and moderated.moderated_on is not None


def test_moderation_table_names_what_each_button_acts_on(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    signed_in.sign("ours", Signer(email=None, display_name="Kit from Leeds"))
    page = signed_in.client.get("/organiser/p/ours/names").get_data(as_text=True)
    assert "<caption>" in page and '<th scope="col">Display name</th>' in page
    assert '<span class="visually-hidden"> Kit from Leeds</span></button>' in page


def close(browser, slug):
    return browser.submit(f"/organiser/p/{slug}", {}, action=f"/organiser/p/{slug}/close")


def test_certificate_of_a_closed_petition(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    assert signed_in.client.get("/p/ours/certificate").status_code == 404
    sign_online(signed_in, "ours", "Online Person")
    upload(signed_in, "ours", b"name,postcode\nPaper Person,S2 4SU\n")
    close(signed_in, "ours")
    page = signed_in.client.get("/p/ours/certificate").get_data(as_text=True)
    head = signed_in.client.get("/p/ours/audit/heads").get_json()["heads"][-1]
    assert re.search(r'class="final-count">2<', page)
    assert re.search(r'class="online">1<', page) and re.search(r'class="paper">1<', page)
    assert head["head"]["root"] in page and head["signature"] in page
    assert services.keyring.log_key_id in page and "signing-audit verify" in page


@pytest.mark.parametrize("via", ["button", "cli"])
def test_shredding_destroys_the_key_but_keeps_the_record(
    app, signed_in, organiser, services, instance_path, monkeypatch, via
):
    petition = own_petition(services, organiser, "ours")
    wrapped = bytes(petition.wrapped_key)
    sign_online(signed_in, "ours", "Online Person")
    early = signed_in.submit("/organiser/p/ours", {"confirm_slug": "ours"}, action="/organiser/p/ours/shred")
    assert early.status_code == 409  # only a closed petition
    close(signed_in, "ours")
    refused = signed_in.submit("/organiser/p/ours", {"confirm_slug": "wrong"}, action="/organiser/p/ours/shred")
    assert refused.status_code == 400 and Petition.get_by_id(petition.id).wrapped_key is not None

    if via == "button":
        signed_in.submit("/organiser/p/ours", {"confirm_slug": "ours"}, action="/organiser/p/ours/shred")
    else:
        monkeypatch.setenv("SIGNING_INSTANCE_PATH", str(instance_path))
        result = CliRunner().invoke(cli, ["shred", "ours", "--yes"])
        assert result.exit_code == 0, result.output

    shredded = Petition.get_by_id(petition.id)
    assert shredded.status == "shredded" and shredded.wrapped_key is None
    with pytest.raises(InvalidKey):
        services.keyring.petition_subkey(shredded, PURPOSE_TAGS)
    for path in instance_path.iterdir():
        if path.name.startswith("countersign.db"):
            assert wrapped not in path.read_bytes(), f"wrapped key still in {path.name}"

    assert signed_in.client.get("/p/ours/sign").status_code == 409
    with pytest.raises(ledger.PetitionNotOpen):
        ledger.add_paper_signatures(services, shredded, [])
    assert signed_in.client.get("/p/ours/totals").status_code == 200
    assert signed_in.client.get("/p/ours/certificate").status_code == 200
    bundle = signed_in.client.get("/p/ours/audit/bundle").get_data()
    assert verify_bundle(bundle.splitlines()).count == 1


@pytest.mark.parametrize("title", ["Save the park\r\nBcc: everyone@example.org", "Tab\there", "Line\u2028separator"])
def test_titles_reach_mail_headers_so_control_characters_are_refused(
    signed_in, organiser, services, instance_path, title
):
    for field in ("title", "title_zh"):
        response = signed_in.submit("/organiser/new", petition_form(slug="header", **{field: title}))
        assert response.status_code == 400
        assert "A title must be one line" in response.get_data(as_text=True)
    assert Petition.get_or_none(Petition.slug == "header") is None
    result = CliRunner().invoke(
        cli, ["petition", "create", "header", "--title", title, "--body", "B"],
        env={"SIGNING_INSTANCE_PATH": str(instance_path)},
    )
    assert result.exit_code == 1 and "must be one line" in result.output
    with pytest.raises(ledger.InvalidPetition):
        ledger.update_petition(own_petition(services, organiser, "other"), title=title)
