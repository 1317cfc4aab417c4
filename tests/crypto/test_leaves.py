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
    assert signature_leaf("online", PERSON, EMAIL, RECEIPT, DAY) == (
        b'{"channel":"online","day":"2026-11-29","email":"'
        + b"ab" * 32
        + b'","person":"'
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
    for leaf in [signature_leaf("online", PERSON, None, RECEIPT, DAY), withdrawal_leaf(0, "signer", DAY)]:
        obj = json.loads(leaf)
        assert json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode() == leaf


def test_round_trip():
    assert parse_leaf(signature_leaf("online", PERSON, EMAIL, RECEIPT, DAY)) == SignatureLeaf(
        channel="online", day=DAY, email=EMAIL, person=PERSON, receipt=RECEIPT
    )
    assert parse_leaf(signature_leaf("paper", PERSON, None, None, DAY)) == SignatureLeaf(
        channel="paper", day=DAY, email=None, person=PERSON, receipt=None
    )
    assert parse_leaf(withdrawal_leaf(3, "signer", DAY)) == WithdrawalLeaf(of=3, reason="signer", day=DAY)


@pytest.mark.parametrize(
    "args",
    [
        ("post", PERSON, EMAIL, RECEIPT, DAY),
        ("paper", PERSON, EMAIL, None, DAY),
        ("online", PERSON[:31], EMAIL, RECEIPT, DAY),
        ("online", None, EMAIL, RECEIPT, DAY),
        ("online", PERSON, EMAIL + b"x", RECEIPT, DAY),
        ("online", PERSON, EMAIL, RECEIPT, datetime(2026, 11, 29)),
        ("online", PERSON, EMAIL, RECEIPT, "2026-11-29"),
    ],
)
def test_signature_leaf_refuses_bad_input(args):
    with pytest.raises(ValueError):
        signature_leaf(*args)


@pytest.mark.parametrize(
    "args", [(-1, "signer", DAY), (True, "signer", DAY), (1, "bored", DAY), (10**18, "signer", DAY)]
)
def test_withdrawal_leaf_refuses_bad_input(args):
    with pytest.raises(ValueError):
        withdrawal_leaf(*args)


SIG = signature_leaf("online", PERSON, EMAIL, RECEIPT, DAY)
WD = withdrawal_leaf(12, "signer", DAY)


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
    assert parse_leaf(signature_leaf(channel, person, email, receipt, day)) == SignatureLeaf(
        channel=channel, day=day, email=email, person=person, receipt=receipt
    )


@given(of=st.integers(0, 10**18 - 1), reason=st.sampled_from(["signer", "superseded"]), day=st.dates(date(1000, 1, 1)))
def test_any_withdrawal_round_trips(of, reason, day):
    assert parse_leaf(withdrawal_leaf(of, reason, day)) == WithdrawalLeaf(of=of, reason=reason, day=day)
