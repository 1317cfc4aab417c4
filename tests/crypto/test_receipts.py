"""Receipt codes: written form, forgiving parsing, digest."""

import base64
import hashlib
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crypto.errors import InvalidReceipt
from crypto.receipts import (
    RECEIPT_BYTES,
    format_receipt,
    issue_receipt,
    new_receipt,
    parse_receipt,
    receipt_digest,
)

RAW = bytes(range(16))
WRITTEN = format_receipt(RAW)
SHAPE = re.compile(r"(?:[A-Z2-7]{4}-){6}[A-Z2-7]{2}")


def test_written_form_shape_and_known_value():
    assert WRITTEN == "AAAQ-EAYE-AUDA-OCAJ-BIFQ-YDIO-B4"
    assert SHAPE.fullmatch(WRITTEN)
    # The same as plain RFC 4648 base32 with the padding removed.
    assert WRITTEN.replace("-", "") == base64.b32encode(RAW).decode().rstrip("=")


def test_new_receipt_shape_and_randomness():
    receipts = {new_receipt() for _ in range(50)}
    assert len(receipts) == 50
    for r in receipts:
        assert SHAPE.fullmatch(r)
        assert len(parse_receipt(r)) == RECEIPT_BYTES


def test_issued_digest_is_the_digest_of_the_code_shown():
    """What is stored must be what the signer's written code parses to, or their receipt finds nothing."""
    issued = [issue_receipt() for _ in range(50)]
    assert len({code for code, _ in issued}) == 50
    for code, digest in issued:
        assert SHAPE.fullmatch(code)
        assert digest == receipt_digest(parse_receipt(code)) == hashlib.sha256(parse_receipt(code)).digest()


def test_round_trip():
    assert parse_receipt(WRITTEN) == RAW


@pytest.mark.parametrize(
    "text",
    [
        WRITTEN.lower(),
        WRITTEN.replace("-", ""),
        WRITTEN.replace("-", " "),
        "  " + WRITTEN.replace("-", " - ") + "\n",
        WRITTEN.replace("-", "\u2013"),  # en dash from a word processor
        "aaaq eayeaudaocajbifqydiob4",
        WRITTEN.replace("O", "0").replace("I", "1").replace("B", "8"),
        "AAAQ--EAYE-AUDA-OCAJ-BIFQ-YDIO-B4",
    ],
)
def test_forgiving_parse(text):
    assert parse_receipt(text) == RAW


@pytest.mark.parametrize(
    "text",
    [
        "",
        "----",
        WRITTEN[:-1],  # 25 characters
        WRITTEN + "A",  # 27 characters
        WRITTEN[:-2] + "B5",  # last character carries non-zero padding bits
        WRITTEN[:-2] + "B7",
        WRITTEN[:-1] + "9",  # 9 is not base32 and has no look-alike
        WRITTEN.replace("A", "@", 1),
        WRITTEN + "====",
        WRITTEN.replace("I", "\u0131"),  # dotless i upper-cases to I
        "A" * 1000,
    ],
)
def test_rejections(text):
    with pytest.raises(InvalidReceipt):
        parse_receipt(text)


@pytest.mark.parametrize(
    "text", ["ZEPHYRINEZEPHYRINE", "ZEPHYR!NE" * 3, "ZEPHYRINE" * 20]
)
def test_rejection_message_does_not_echo_input(text):
    with pytest.raises(InvalidReceipt) as info:
        parse_receipt(text)
    assert "ZEPHYR" not in str(info.value).upper()


def test_digest_is_sha256_of_raw_bytes():
    digest = receipt_digest(RAW)
    assert len(digest) == 32
    assert digest == hashlib.sha256(RAW).digest()
    assert receipt_digest(parse_receipt(WRITTEN.lower())) == digest


@pytest.mark.parametrize("bad", [b"", b"\x00" * 15, b"\x00" * 17])
def test_wrong_length_raw_refused(bad):
    with pytest.raises(ValueError):
        format_receipt(bad)
    with pytest.raises(ValueError):
        receipt_digest(bad)


@given(st.binary(min_size=16, max_size=16))
def test_format_parse_round_trip(raw):
    written = format_receipt(raw)
    assert SHAPE.fullmatch(written)
    assert parse_receipt(written) == raw
    assert parse_receipt(written.lower().replace("-", " ")) == raw


@given(st.binary(min_size=16, max_size=16), st.integers(min_value=1, max_value=3))
def test_any_nonzero_padding_bits_refused(raw, pad):
    written = format_receipt(raw)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
    last = alphabet[alphabet.index(written[-1]) | pad]
    with pytest.raises(InvalidReceipt):
        parse_receipt(written[:-1] + last)
