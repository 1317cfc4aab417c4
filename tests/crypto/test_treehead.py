"""crypto/treehead.py: canonical JSON, Ed25519 signatures (RFC 8032 vectors), strict parsing."""

import dataclasses
import json
import re
from datetime import datetime, timedelta, timezone
from hashlib import sha256
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.errors import InvalidBundle, InvalidKey, InvalidSignature
from crypto.treehead import SIGNED_PREFIX, TreeHead, format_minute, key_id, sign_head, verify_head

VECTORS = Path(__file__).resolve().parent.parent / "vectors"
RFC8032 = json.loads((VECTORS / "rfc8032_ed25519.json").read_text())["vectors"]


def raw_public(private_key):
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@pytest.fixture
def key():
    return Ed25519PrivateKey.generate()


@pytest.fixture
def head():
    return TreeHead(petition="save-the-pier", size=12, root=bytes(range(32)), count=9, time="2026-11-29T18:47Z")


@pytest.mark.parametrize("vector", RFC8032, ids=lambda v: v["test"])
def test_rfc8032_vectors_through_cryptography(vector):
    private_key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(vector["secret_key_hex"]))
    assert raw_public(private_key).hex() == vector["public_key_hex"]
    message = bytes.fromhex(vector["message_hex"])
    assert private_key.sign(message).hex() == vector["signature_hex"]
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["public_key_hex"]))
    public_key.verify(bytes.fromhex(vector["signature_hex"]), message)


def test_canonical_json(head):
    assert head.to_json() == (
        b'{"count":9,"petition":"save-the-pier","root":"000102030405060708090a0b0c0d0e0f'
        b'101112131415161718191a1b1c1d1e1f","size":12,"time":"2026-11-29T18:47Z"}'
    )
    assert TreeHead.from_json(head.to_json()) == head


def test_sign_and_verify(key, head):
    signature = sign_head(key, head)
    assert len(signature) == 64
    key.public_key().verify(signature, SIGNED_PREFIX + head.to_json())
    verify_head(raw_public(key), head, signature)


@pytest.mark.parametrize(
    "change",
    [
        {"petition": "save-the-pie"},
        {"size": 13},
        {"root": bytes(32)},
        {"count": 8},
        {"time": "2026-11-29T18:48Z"},
    ],
    ids=lambda c: next(iter(c)),
)
def test_one_changed_field_fails(key, head, change):
    signature = sign_head(key, head)
    with pytest.raises(InvalidSignature, match="does not verify"):
        verify_head(raw_public(key), dataclasses.replace(head, **change), signature)


def test_other_key_or_bad_bytes_fail(key, head):
    signature = sign_head(key, head)
    other = raw_public(Ed25519PrivateKey.generate())
    with pytest.raises(InvalidSignature):
        verify_head(other, head, signature)
    with pytest.raises(InvalidSignature):
        verify_head(raw_public(key), head, signature[:63])
    with pytest.raises(InvalidSignature):
        verify_head(raw_public(key)[:31], head, signature)
    with pytest.raises(InvalidSignature):
        verify_head(raw_public(key), head, bytes([signature[0] ^ 1]) + signature[1:])
    # Without the domain-separation prefix the same key's signature is not a head signature.
    with pytest.raises(InvalidSignature):
        verify_head(raw_public(key), head, key.sign(head.to_json()))


def test_key_id():
    public = bytes.fromhex(RFC8032[0]["public_key_hex"])
    assert key_id(public) == sha256(public).hexdigest()[:16]
    assert re.fullmatch(r"[0-9a-f]{16}", key_id(public))
    with pytest.raises(InvalidKey):
        key_id(public[:31])


def test_format_minute_takes_injected_time():
    moment = datetime(2026, 11, 29, 20, 47, 59, tzinfo=timezone(timedelta(hours=2)))
    assert format_minute(moment) == "2026-11-29T18:47Z"
    with pytest.raises(ValueError):
        format_minute(datetime(2026, 11, 29, 18, 47))


GOOD = {"count": 9, "petition": "p", "root": "ab" * 32, "size": 12, "time": "2026-11-29T18:47Z"}


@pytest.mark.parametrize(
    "bad",
    [
        {**GOOD, "extra": 1},
        {k: v for k, v in GOOD.items() if k != "time"},
        {**GOOD, "size": "12"},
        {**GOOD, "size": 12.0},
        {**GOOD, "size": True},
        {**GOOD, "count": -1},
        {**GOOD, "count": 13},
        {**GOOD, "root": "AB" * 32},
        {**GOOD, "root": "ab" * 31},
        {**GOOD, "root": 5},
        {**GOOD, "petition": ""},
        {**GOOD, "petition": 7},
        {**GOOD, "time": "2026-11-29T18:47:00Z"},
        {**GOOD, "time": "2026-11-29 18:47Z"},
        {**GOOD, "time": "2026-02-30T18:47Z"},
        [GOOD],
    ],
)
def test_strict_parsing(bad):
    with pytest.raises(InvalidBundle):
        TreeHead.from_dict(bad)


def test_strict_json():
    TreeHead.from_dict(GOOD)
    for raw in [b'{"count":1,"count":1}', b"{", b"\xff", b'{"count":NaN}']:
        with pytest.raises(InvalidBundle):
            TreeHead.from_json(raw)


def test_construction_checks_fields():
    with pytest.raises(ValueError):
        TreeHead(petition="p", size=1, root=b"x" * 31, count=0, time="2026-11-29T18:47Z")
    with pytest.raises(ValueError):
        TreeHead(petition="p", size=1, root=b"x" * 32, count=2, time="2026-11-29T18:47Z")
