"""crypto/leaves.py: the canonical leaf encoding, byte for byte, and its strict parser."""

import json
from datetime import date, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import InvalidBundle
from crypto.leaves import SignatureLeaf, WithdrawalLeaf, parse_leaf, signature_leaf, withdrawal_leaf

PERSON, EMAIL, RECEIPT = b"\x01" * 32, b"\xab" * 32, b"\xcd" * 32
DAY = date(2026, 11, 29)


def test_signature_leaf_bytes():
    # Online with an email tag: the person tag is not published (no probing oracle).
    assert signature_leaf("online", None, EMAIL, RECEIPT, DAY) == (
        b'{"channel":"online","day":"2026-11-29","email":"'
        + b"ab" * 32
        + b'","person":null,"receipt":"'
        + b"cd" * 32
        + b'","type":"signature","v":1}'
    )
    # Online without an email tag: deduplicated by person tag, so it is published.
    assert signature_leaf("online", PERSON, None, RECEIPT, DAY) == (
        b'{"channel":"online","day":"2026-11-29","email":null,"person":"'
        + b"01" * 32
        + b'","receipt":"'
        + b"cd" * 32
        + b'","type":"signature","v":1}'
    )
    assert signature_leaf("paper", PERSON, None, None, DAY) == (
        b'{"channel":"paper","day":"2026-11-29","email":null,"person":"'
        + b"01" * 32
        + b'","receipt":null,"type":"signature","v":1}'
    )


def test_withdrawal_leaf_bytes():
    assert withdrawal_leaf(17, "superseded", DAY) == (
        b'{"day":"2026-11-29","of":17,"reason":"superseded","type":"withdrawal","v":1}'
    )


def test_is_canonical_json():
    for leaf in [
        signature_leaf("online", PERSON, None, RECEIPT, DAY),
        signature_leaf("online", None, EMAIL, RECEIPT, DAY),
        withdrawal_leaf(0, "signer", DAY),
    ]:
        obj = json.loads(leaf)
        assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == leaf


def test_round_trip():
    assert parse_leaf(signature_leaf("online", None, EMAIL, RECEIPT, DAY)) == SignatureLeaf(
        channel="online", day=DAY, email=EMAIL, person=None, receipt=RECEIPT
    )
    assert parse_leaf(signature_leaf("online", PERSON, None, RECEIPT, DAY)) == SignatureLeaf(
        channel="online", day=DAY, email=None, person=PERSON, receipt=RECEIPT
    )
    assert parse_leaf(signature_leaf("paper", PERSON, None, None, DAY)) == SignatureLeaf(
        channel="paper", day=DAY, email=None, person=PERSON, receipt=None
    )
    assert parse_leaf(withdrawal_leaf(3, "signer", DAY)) == WithdrawalLeaf(of=3, reason="signer", day=DAY)


@pytest.mark.parametrize(
    "args",
    [
        ("post", None, EMAIL, RECEIPT, DAY),
        ("online", PERSON[:31], None, RECEIPT, DAY),
        ("paper", PERSON + b"x", None, None, DAY),
        ("online", None, EMAIL + b"x", RECEIPT, DAY),
        ("online", None, EMAIL[:31], RECEIPT, DAY),
        ("online", None, EMAIL, RECEIPT[:31], DAY),
        ("online", None, EMAIL, RECEIPT, datetime(2026, 11, 29)),
        ("online", None, EMAIL, RECEIPT, "2026-11-29"),
    ],
)
def test_signature_leaf_refuses_bad_input(args):
    with pytest.raises(ValueError):
        signature_leaf(*args)


@pytest.mark.parametrize(
    "args, message",
    [
        (("online", PERSON, EMAIL, RECEIPT, DAY), "must not publish its person tag"),
        (("online", None, None, RECEIPT, DAY), "must carry a person tag"),
        (("paper", None, None, None, DAY), "must carry a person tag"),
        (("paper", PERSON, EMAIL, None, DAY), "a paper signature has no email tag"),
        (("paper", None, EMAIL, None, DAY), "a paper signature has no email tag"),
    ],
)
def test_signature_leaf_enforces_the_tag_invariant(args, message):
    """person is null if and only if the channel is online and email is not null."""
    with pytest.raises(ValueError, match=message):
        signature_leaf(*args)


@pytest.mark.parametrize(
    "args", [(-1, "signer", DAY), (True, "signer", DAY), (1, "bored", DAY), (10**18, "signer", DAY)]
)
def test_withdrawal_leaf_refuses_bad_input(args):
    with pytest.raises(ValueError):
        withdrawal_leaf(*args)


SIG = signature_leaf("online", None, EMAIL, RECEIPT, DAY)
SIG_NO_EMAIL = signature_leaf("online", PERSON, None, RECEIPT, DAY)
PAPER = signature_leaf("paper", PERSON, None, None, DAY)
WD = withdrawal_leaf(12, "signer", DAY)
EMAIL_FIELD = b'"email":"' + b"ab" * 32 + b'"'
PERSON_FIELD = b'"person":"' + b"01" * 32 + b'"'


@pytest.mark.parametrize(
    "raw, message",
    [
        (SIG.replace(b'"person":null', PERSON_FIELD), "with an email tag publishes a person tag"),
        (SIG_NO_EMAIL.replace(PERSON_FIELD, b'"person":null'), "neither an email tag nor a person tag"),
        (PAPER.replace(PERSON_FIELD, b'"person":null'), "neither an email tag nor a person tag"),
        (PAPER.replace(b'"email":null', EMAIL_FIELD), "paper signature leaf carries an email tag"),
        (
            PAPER.replace(b'"email":null', EMAIL_FIELD).replace(PERSON_FIELD, b'"person":null'),
            "paper signature leaf carries an email tag",
        ),
    ],
)
def test_parser_enforces_the_tag_invariant(raw, message):
    json.loads(raw)  # well-formed JSON in canonical form: only the invariant is broken
    with pytest.raises(InvalidBundle, match=message):
        parse_leaf(raw)


@pytest.mark.parametrize(
    "raw",
    [
        SIG.replace(b'","day"', b'", "day"'),  # extra space
        SIG + b" ",
        SIG + b"\n",
        b" " + SIG,
        SIG.replace(b"ab", b"AB", 1),  # upper-case hex
        SIG.replace(b"ab", b"ag", 1),  # not hex
        SIG.replace(b"ab", b"a ", 1),
        SIG.replace(b"abab", "ab\u00e9".encode(), 1),
        SIG.replace(b"cd", b"", 1),  # short receipt
        SIG_NO_EMAIL.replace(b"01", b"", 1),  # short person tag
        SIG_NO_EMAIL.replace(b"01", b"0G", 1),  # person tag not hex
        SIG.replace(b'"person":null', b'"person":"null"'),
        SIG.replace(b'"person":null', b'"person":""'),
        SIG.replace(b'"v":1', b'"v":2'),
        SIG.replace(b'"v":1', b'"v":1.0'),
        SIG.replace(b"11-29", b"11-31"),  # impossible day
        SIG.replace(b"online", b"paper")
        .replace(b'"email":"' + b"ab" * 32 + b'"', b'"email":null')
        .replace(b'"receipt":"' + b"cd" * 32 + b'"', b'"receipt":null')
        .replace(b'"email":null', b'"email":"' + b"ab" * 32 + b'"'),  # paper with email
        json.dumps(json.loads(SIG)).encode(),  # default separators
        json.dumps(json.loads(SIG), indent=1).encode(),
        json.dumps(dict(reversed(list(json.loads(SIG).items()))), separators=(",", ":")).encode(),  # key order
        WD.replace(b'"of":12', b'"of":012'),
        WD.replace(b'"of":12', b'"of":-1'),
        WD.replace(b'"of":12', b'"of":"12"'),
        WD.replace(b"signer", b"bored"),
        WD.replace(b"withdrawal", b"signature"),
        b"",
        b"{}",
    ],
)
def test_parser_refuses_anything_not_canonical(raw):
    with pytest.raises(InvalidBundle):
        parse_leaf(raw)


@given(
    channel=st.sampled_from(["online", "paper"]),
    person=st.binary(min_size=32, max_size=32),
    email=st.none() | st.binary(min_size=32, max_size=32),
    receipt=st.none() | st.binary(min_size=32, max_size=32),
    day=st.dates(date(1000, 1, 1), date(9999, 12, 31)),
)
def test_any_signature_round_trips(channel, person, email, receipt, day):
    if channel == "paper":
        email = None
    if email is not None:
        person = None  # online with an email tag: no published person tag
    assert parse_leaf(signature_leaf(channel, person, email, receipt, day)) == SignatureLeaf(
        channel=channel, day=day, email=email, person=person, receipt=receipt
    )


@given(of=st.integers(0, 10**18 - 1), reason=st.sampled_from(["signer", "superseded"]), day=st.dates(date(1000, 1, 1)))
def test_any_withdrawal_round_trips(of, reason, day):
    assert parse_leaf(withdrawal_leaf(of, reason, day)) == WithdrawalLeaf(of=of, reason=reason, day=day)
