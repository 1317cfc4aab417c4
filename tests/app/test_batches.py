"""Batches on a schedule (issue 11): never triggered into themselves, never below MIN_BATCH before close,
heads dated to the day; and receipts that work for a signer whose first answer was lost (issue 16)."""

import dataclasses

from helpers import Signer, make_petition, receipt_from

from signing import ledger
from signing.models import Inbox, Signature


def head_sizes(browser, slug="test"):
    return [entry["head"]["size"] for entry in browser.client.get(f"/p/{slug}/audit/heads").get_json()["heads"]]


def with_min_batch(app, size):
    app.extensions["countersign"] = dataclasses.replace(app.extensions["countersign"], min_batch=size)


def test_a_batch_never_contains_the_submission_that_caused_it(app, browser, services):
    make_petition(services, "open", require_email=False)
    browser.scheduler = False
    # Every request that may publish does so BEFORE its own write: with the
    # interval at 0 and batches of one, each signature waits for the next request.
    receipt_from(browser.sign("open", Signer(name="First Person", email=None)))
    assert head_sizes(browser, "open") == [0]
    receipt_from(browser.sign("open", Signer(name="Second Person", email=None)))
    assert head_sizes(browser, "open") == [0, 1]  # the first one, alone; not the second
    assert Inbox.select().count() == 1


def test_where_the_background_thread_publishes_requests_leave_batches_to_it(app, make_app, browser, services):
    assert make_app(BACKGROUND_SENDER=True).extensions["countersign"].scheduled_publishing
    assert not services.scheduled_publishing  # the tests' apps: the thread is off, requests publish
    make_petition(services, "open", require_email=False)
    app.extensions["countersign"] = dataclasses.replace(services, scheduled_publishing=True)
    browser.scheduler = False
    for name in ("First Person", "Second Person"):
        receipt_from(browser.sign("open", Signer(name=name, email=None)))
    assert head_sizes(browser, "open") == [0]  # the interval is 0, yet no request published
    browser.publish()  # the thread's tick
    assert head_sizes(browser, "open") == [0, 2]


def test_no_batch_below_min_batch_before_close(app, browser, services):
    petition = make_petition(services, "open", require_email=False)
    with_min_batch(app, 3)
    for i in range(2):
        browser.sign("open", Signer(name=f"Person {chr(65 + i)}", email=None))
    assert head_sizes(browser, "open") == [0]  # two waiting: too few
    assert ledger.publish(app.extensions["countersign"], petition, force=True) is None  # even forced
    assert Signature.select().count() == 0  # the settlement was rolled back with it
    browser.sign("open", Signer(name="Person C", email=None))
    browser.sign("open", Signer(name="Person D", email=None))
    assert head_sizes(browser, "open") == [0, 3]
    # At close, whatever is left goes out, however few.
    ledger.close_petition(app.extensions["countersign"], ledger.petition_by_slug("open"))
    assert head_sizes(browser, "open") == [0, 3, 4]


def test_heads_carry_the_day_not_the_minute(browser, petition):
    browser.sign_and_confirm("test", Signer())
    times = [entry["head"]["time"] for entry in browser.client.get("/p/test/audit/heads").get_json()["heads"]]
    assert all(time.endswith("T00:00Z") for time in times), times


def test_display_names_appear_only_with_their_batch_and_page_by_log_position(app, browser, services):
    make_petition(services, "open", require_email=False)
    browser.scheduler = False
    browser.sign("open", Signer(name="Named Person", email=None, display_name="Visible Later"))
    assert "Visible Later" not in browser.client.get("/p/open").get_data(as_text=True)
    browser.publish()
    page = browser.client.get("/p/open").get_data(as_text=True)
    assert "Visible Later" in page
    # Paging is by leaf index, a public log position; a row id is never accepted as such.
    assert browser.client.get("/p/open?before=0").get_data(as_text=True).count("Visible Later") == 0
    assert "Visible Later" in browser.client.get("/p/open?before=1").get_data(as_text=True)


def test_a_signer_whose_answer_was_lost_can_check_the_receipt_of_their_retry(browser, petition, mailbox):
    # The first confirmation committed, but its page never reached the signer.
    browser.sign_and_confirm("test", Signer())
    # They sign again: the mail says "already signed" and offers a new receipt
    # for the same signature; they confirm, and keep the receipt shown now.
    retry = receipt_from(browser.sign_and_confirm("test", Signer()))
    assert "already been used to sign it" in mailbox.last().body
    page = browser.check_receipt("test", retry).get_data(as_text=True)
    assert "Counted." in page
    assert ledger.current_count(ledger.petition_by_slug("test")) == 1
    # And it can withdraw: on an email petition only the mailbox owner holds it.
    browser.withdraw("test", retry)
    assert ledger.current_count(ledger.petition_by_slug("test")) == 0


def test_without_email_a_duplicate_receipt_checks_but_cannot_withdraw(browser, services):
    make_petition(services, "open", require_email=False)
    first = receipt_from(browser.sign("open", Signer(email=None)))
    again = receipt_from(browser.sign("open", Signer(email=None)))
    assert "Counted." in browser.check_receipt("open", again).get_data(as_text=True)
    refused = browser.withdraw("open", again)
    assert refused.status_code == 409 and "cannot withdraw" in refused.get_data(as_text=True)
    assert "Counted." in browser.check_receipt("open", first).get_data(as_text=True)


def test_resubmission_content_is_never_what_counts(browser, petition, mailbox, services):
    browser.scheduler = False
    browser.sign("test", Signer(display_name="The Real One"))
    real_link = mailbox.last().link
    # A stranger types the same address with other details; the mail goes to the owner only.
    browser.sign("test", Signer(name="Stranger Name", postcode="S10 2TN", display_name="Hijacker"))
    row = Inbox.get(Inbox.display_name == "The Real One")
    assert row.district == "S1" and row.token_hash is not None
    browser.confirm(real_link)
    browser.publish()
    (counted,) = Signature.select()
    assert counted.display_name == "The Real One" and counted.district == "S1"


def test_petition_for_signers_at_risk_must_ask_for_email(services):
    import pytest

    with pytest.raises(ledger.InvalidPetition):
        make_petition(services, "risky", require_email=False, at_risk=True)
    petition = make_petition(services, "safe", at_risk=True, status=ledger.DRAFT)
    with pytest.raises(ledger.InvalidPetition):
        ledger.update_petition(petition, require_email=False)


def test_no_email_petition_says_plainly_that_name_and_postcode_can_be_tested(browser, services):
    make_petition(services, "open", require_email=False)
    english = browser.client.get("/p/open/sign").get_data(as_text=True)
    assert "anyone who knows your name and postcode can find out whether you signed" in english
    chinese = browser.client.get("/p/open/sign", headers={"Accept-Language": "zh-HK"}).get_data(as_text=True)
    assert "任何知道你姓名及郵政編碼的人" in chinese
    assert "can find out whether you signed" not in browser.client.get("/p/test/sign").get_data(as_text=True)
