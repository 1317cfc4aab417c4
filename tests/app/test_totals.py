"""Published totals: small-cell suppression, and the totals page and CSV."""

import re

from helpers import own_petition, sign_online, upload

from signing.ledger.totals import FEWER_THAN, SHOWN, WITHHELD, suppress


def states(breakdown):
    return {cell.label: cell.state for cell in breakdown.cells}


def test_small_cells_are_suppressed():
    result = suppress({"S1": 40, "S2": 3, "S3": 2, "S10": 12}, threshold=5)
    assert states(result) == {"S1": SHOWN, "S2": FEWER_THAN, "S3": FEWER_THAN, "S10": SHOWN}


def test_districts_and_days_are_in_natural_order():
    result = suppress({"S10": 12, "S2": 30, "S1": 40, "DN5": 9, "DN10": 8}, threshold=5)
    assert [cell.label for cell in result.cells] == ["DN5", "DN10", "S1", "S2", "S10"]
    days = suppress({"2026-12-10": 9, "2026-12-09": 9, "2026-11-30": 9}, threshold=5)
    assert [cell.label for cell in days.cells] == ["2026-11-30", "2026-12-09", "2026-12-10"]


def test_a_lone_hidden_cell_cannot_be_subtracted_back_out():
    # Total 55 is public; hiding only S2 would give it away as 55 - 40 - 12.
    result = suppress({"S1": 40, "S2": 3, "S10": 12}, threshold=5)
    assert states(result) == {"S1": SHOWN, "S2": FEWER_THAN, "S10": WITHHELD}
    hidden = [cell for cell in result.cells if cell.state != SHOWN]
    assert len(hidden) == 2


def test_hidden_cells_whose_sum_forces_their_values_are_protected():
    # Two hidden cells summing to 2 must both be 1: withhold more.
    result = suppress({"S1": 40, "S2": 1, "S3": 1, "S10": 12}, threshold=5)
    assert states(result)["S10"] == WITHHELD


def test_nothing_is_broken_down_when_every_split_would_expose():
    assert suppress({"S1": 1}, threshold=5).withheld
    assert states(suppress({"S1": 7}, threshold=5)) == {"S1": SHOWN}


def test_totals_page_and_csv_show_suppressed_figures(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    rows = [f"Person {chr(65 + i)} Sheffield,S1 2HE" for i in range(6)] + ["Only One,DN55 1PT"]
    upload(signed_in, "ours", ("name,postcode\n" + "\n".join(rows) + "\n").encode())
    sign_online(signed_in, "ours", "Online Person", postcode="S1 1AA")
    page = signed_in.client.get("/p/ours/totals")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "<svg" in text and "<script" not in text
    assert "fewer than 5" in text and "withheld" in text
    assert re.search(r'class="online">1<', text) and re.search(r'class="paper">7<', text)
    csv_text = signed_in.client.get("/p/ours/totals.csv").get_data(as_text=True)
    assert "overall,all,8" in csv_text
    assert "district,DN55,fewer than 5" in csv_text
    assert "district,S1,withheld" in csv_text


def test_mostly_hidden_districts_are_one_sentence_and_the_chart_is_not_read_out(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    rows = [f"Person {chr(65 + i)} Sheffield,S1 2HE" for i in range(10)]
    rows += [f"Person {chr(65 + i)} Hillsborough,S10 2TN" for i in range(8)]
    rows += ["Only One,DN55 1PT", "Another One,S2 4SU", "Third One,S3 7RD"]
    upload(signed_in, "ours", ("name,postcode\n" + "\n".join(rows) + "\n").encode())
    signed_in.publish()
    text = signed_in.client.get("/p/ours/totals").get_data(as_text=True)
    district = text.split("By postcode district")[1].split("By day")[0]
    assert "4 of 5 groups have too few signatures to show" in district
    assert "DN55" not in district and "S2<" not in district and "S10" not in district
    assert "<rect" in district and "S1" in district  # the one district shown
    assert '<svg class="chart" aria-hidden="true"' in text and 'role="img"' not in text


def test_no_postcodes_collected_only_when_none_are_asked_for(signed_in, organiser, services):
    own_petition(services, organiser, "ours")
    own_petition(services, organiser, "nopost", require_postcode=False)
    asks = signed_in.client.get("/p/ours/totals").get_data(as_text=True)
    assert "No signatures with a postcode yet." in asks and "does not ask for postcodes" not in asks
    none_asked = signed_in.client.get("/p/nopost/totals").get_data(as_text=True)
    assert "This petition does not ask for postcodes." in none_asked
