"""Identity tags: the Argon2id primitive against RFC 9106, then our composition."""

import json
from pathlib import Path

import pytest
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from crypto.normalise import canonical_email, canonical_name, canonical_postcode
from crypto.tags import (
    DEFAULT_ARGON2,
    TAG_BYTES,
    Argon2Params,
    compute_tag,
    email_tag,
    person_tag,
)

VECTORS = Path(__file__).resolve().parent.parent / "vectors"

# Cheapest parameters Argon2 allows: the composition is what is tested here.
CHEAP = Argon2Params(time_cost=1, memory_kib=8, parallelism=1)
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
SALT_A = b"\x02" * 16
SALT_B = b"\x03" * 16


# --- the primitive ----------------------------------------------------------


def test_rfc9106_argon2id_vector():
    """RFC 9106 section 5.3. Uses Argon2's secret K and associated data X,
    which argon2-cffi's hash_secret_raw cannot take, so cryptography's Argon2id
    is used: this proves the primitive, not our composition."""
    data = json.loads((VECTORS / "rfc9106_argon2.json").read_text())
    inputs = data["common_inputs"]
    (vector,) = [v for v in data["vectors"] if v["type"] == "Argon2id"]
    kdf = Argon2id(
        salt=bytes.fromhex(inputs["salt_hex"]),
        length=inputs["tag_length"],
        iterations=inputs["t_cost"],
        lanes=inputs["parallelism_lanes"],
        memory_cost=inputs["m_cost_kib"],
        ad=bytes.fromhex(inputs["ad_hex"]),
        secret=bytes.fromhex(inputs["secret_hex"]),
    )
    assert kdf.derive(bytes.fromhex(inputs["password_hex"])).hex() == vector["tag_hex"]


def test_argon2_cffi_and_cryptography_agree_without_secret_and_ad():
    """Ties the RFC-checked implementation to the one compute_tag calls."""
    password, salt = b"\x01" * 32, b"\x02" * 16
    ours = hash_secret_raw(
        password,
        salt,
        time_cost=3,
        memory_cost=32,
        parallelism=4,
        hash_len=32,
        type=Type.ID,
    )
    theirs = Argon2id(
        salt=salt, length=32, iterations=3, lanes=4, memory_cost=32
    ).derive(password)
    assert ours == theirs


# --- the composition --------------------------------------------------------


def naive_tag(tag_key, salt, params, field, value):
    """Reference: the documented layout, written out once more."""
    mac = hmac.HMAC(tag_key, hashes.SHA256())
    mac.update(field.encode() + b"\x00" + value.encode("utf-8"))
    return Argon2id(
        salt=salt,
        length=32,
        iterations=params.time_cost,
        lanes=params.parallelism,
        memory_cost=params.memory_kib,
    ).derive(mac.finalize())


def test_tag_matches_reference_layout():
    assert compute_tag(KEY_A, SALT_A, CHEAP, "email", "clara@gmail.com") == naive_tag(
        KEY_A, SALT_A, CHEAP, "email", "clara@gmail.com"
    )
    assert person_tag(KEY_A, SALT_A, CHEAP, "cheung clara", "SW1A1AA") == naive_tag(
        KEY_A, SALT_A, CHEAP, "person", "cheung clara\nSW1A1AA"
    )


def test_tag_is_32_bytes_and_deterministic():
    tag = email_tag(KEY_A, SALT_A, CHEAP, "clara@gmail.com")
    assert len(tag) == TAG_BYTES == 32
    assert tag == email_tag(KEY_A, SALT_A, CHEAP, "clara@gmail.com")


def test_tags_differ_across_petition_keys():
    assert email_tag(KEY_A, SALT_A, CHEAP, "clara@gmail.com") != email_tag(
        KEY_B, SALT_A, CHEAP, "clara@gmail.com"
    )


def test_tags_differ_across_salts():
    assert email_tag(KEY_A, SALT_A, CHEAP, "clara@gmail.com") != email_tag(
        KEY_A, SALT_B, CHEAP, "clara@gmail.com"
    )


def test_tags_differ_across_fields():
    assert compute_tag(KEY_A, SALT_A, CHEAP, "email", "x") != compute_tag(
        KEY_A, SALT_A, CHEAP, "person", "x"
    )


def test_tags_differ_across_params():
    other = Argon2Params(time_cost=2, memory_kib=8, parallelism=1)
    assert email_tag(KEY_A, SALT_A, CHEAP, "a@b.co") != email_tag(
        KEY_A, SALT_A, other, "a@b.co"
    )


def test_field_separator_prevents_shifting_bytes_between_field_and_value():
    assert compute_tag(KEY_A, SALT_A, CHEAP, "ab", "c") != compute_tag(
        KEY_A, SALT_A, CHEAP, "a", "bc"
    )


def test_person_tag_same_after_canonicalisation():
    pc = canonical_postcode("sw1a 1aa")
    first = person_tag(KEY_A, SALT_A, CHEAP, canonical_name("Clara Cheung"), pc)
    second = person_tag(
        KEY_A,
        SALT_A,
        CHEAP,
        canonical_name("CHEUNG Clara"),
        canonical_postcode("SW1A1AA"),
    )
    assert first == second
    assert first != person_tag(
        KEY_A,
        SALT_A,
        CHEAP,
        canonical_name("Clara Cheung"),
        canonical_postcode("S1 2HE"),
    )


def test_email_tag_same_after_canonicalisation():
    assert email_tag(
        KEY_A, SALT_A, CHEAP, canonical_email("C.Lara+x@googlemail.com")
    ) == email_tag(KEY_A, SALT_A, CHEAP, canonical_email("clara@gmail.com"))


@pytest.mark.slow
def test_default_params_produce_a_tag():
    assert DEFAULT_ARGON2 == Argon2Params(time_cost=2, memory_kib=19456, parallelism=1)
    tag = email_tag(KEY_A, SALT_A, DEFAULT_ARGON2, "clara@gmail.com")
    assert tag == naive_tag(KEY_A, SALT_A, DEFAULT_ARGON2, "email", "clara@gmail.com")


@pytest.mark.parametrize(
    ("key", "salt", "field"),
    [
        (b"\x00" * 31, SALT_A, "email"),
        (b"\x00" * 33, SALT_A, "email"),
        (KEY_A, b"\x00" * 15, "email"),
        (KEY_A, SALT_A, ""),
        (KEY_A, SALT_A, "a\x00b"),
    ],
)
def test_compute_tag_preconditions(key, salt, field):
    with pytest.raises(ValueError):
        compute_tag(key, salt, CHEAP, field, "x")


def test_person_tag_refuses_newline():
    with pytest.raises(ValueError):
        person_tag(KEY_A, SALT_A, CHEAP, "a\nb", "SW1A1AA")


# --- parameters -------------------------------------------------------------


def test_params_round_trip_through_dict():
    assert DEFAULT_ARGON2.to_dict() == {
        "time_cost": 2,
        "memory_kib": 19456,
        "parallelism": 1,
    }
    assert Argon2Params.from_dict(DEFAULT_ARGON2.to_dict()) == DEFAULT_ARGON2


def test_params_are_frozen():
    with pytest.raises(AttributeError):
        DEFAULT_ARGON2.time_cost = 1


@pytest.mark.parametrize(
    "d",
    [
        None,
        [],
        {},
        {"time_cost": 2, "memory_kib": 19456},
        {"time_cost": 2, "memory_kib": 19456, "parallelism": 1, "extra": 0},
        {"time_cost": "2", "memory_kib": 19456, "parallelism": 1},
        {"time_cost": 2.0, "memory_kib": 19456, "parallelism": 1},
        {"time_cost": True, "memory_kib": 19456, "parallelism": 1},
        {"time_cost": 0, "memory_kib": 19456, "parallelism": 1},
        {"time_cost": 101, "memory_kib": 19456, "parallelism": 1},
        {"time_cost": 2, "memory_kib": 7, "parallelism": 1},
        {"time_cost": 2, "memory_kib": 15, "parallelism": 2},
        {"time_cost": 2, "memory_kib": 2**40, "parallelism": 1},
        {"time_cost": 2, "memory_kib": 19456, "parallelism": 0},
    ],
)
def test_bad_params_refused(d):
    with pytest.raises(ValueError):
        Argon2Params.from_dict(d)
