"""Keyed Argon2id identity tags (DESIGN.md section 6).

A tag lets the service recognise the same signer twice without storing who
they are. Two layers, each for its own reason:

* HMAC-SHA256 under the petition's tag sub-key makes the tag useless without
  the key: with the database alone, nobody can test guesses ("did Clara Cheung
  of SW1A 1AA sign?"), because the master key that unwraps the petition key
  lives outside the database.
* Argon2id over that MAC makes each guess expensive even for someone who has
  the key too, and the per-petition salt (and key) makes tags of the same
  person unlinkable across petitions.

Tag of field F with canonical value v for one petition::

    secret = HMAC-SHA256(tag_key, UTF-8(F) || 0x00 || UTF-8(v))      32 bytes
    tag    = Argon2id(password=secret, salt=salt, t, m, p,
                      version 0x13, no secret K, no associated data)  32 bytes

computed by argon2-cffi's ``hash_secret_raw`` (whose ``secret`` argument is
Argon2's password input, RFC 9106 section 3.1 "P"). F never contains 0x00, so
the first zero byte marks where the field ends and v cannot impersonate
another field.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes, hmac

TAG_BYTES = 32
TAG_KEY_BYTES = 32
MIN_SALT_BYTES = 16

# Sanity bounds for parameters that may arrive from a database row or an
# audit bundle: wide enough for any sensible calibration, narrow enough that
# a corrupt or hostile value cannot make one tag take hours or all memory.
# Argon2 itself needs at least 8 KiB per lane (RFC 9106 section 3.1).
ARGON2_MAX_TIME_COST = 100
ARGON2_MAX_MEMORY_KIB = 4 * 1024 * 1024  # 4 GiB
ARGON2_MAX_PARALLELISM = 255

_PARAM_FIELDS = ("time_cost", "memory_kib", "parallelism")


@dataclass(frozen=True)
class Argon2Params:
    """Argon2id cost parameters, stored beside each petition so costs can rise
    for new petitions without changing old tags.

    ``time_cost`` is passes over memory (t), ``memory_kib`` is memory in KiB
    (m), ``parallelism`` is lanes (p). Raises ``ValueError`` outside
    1 <= t <= 100, 8*p <= m <= 4 GiB, 1 <= p <= 255.
    """

    time_cost: int
    memory_kib: int
    parallelism: int

    def __post_init__(self) -> None:
        for name in _PARAM_FIELDS:
            value = getattr(self, name)
            # bool is an int subclass; True as a cost is a bug, not a 1.
            # ValueError, not TypeError: callers catch one error for bad stored data.
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(  # noqa: TRY004
                    f"Argon2 {name} must be an integer, got {type(value).__name__}"
                )
        if not 1 <= self.time_cost <= ARGON2_MAX_TIME_COST:
            raise ValueError(
                f"Argon2 time_cost {self.time_cost}, want 1..{ARGON2_MAX_TIME_COST}"
            )
        if not 1 <= self.parallelism <= ARGON2_MAX_PARALLELISM:
            raise ValueError(
                f"Argon2 parallelism {self.parallelism}, want 1..{ARGON2_MAX_PARALLELISM}"
            )
        min_memory = 8 * self.parallelism
        if not min_memory <= self.memory_kib <= ARGON2_MAX_MEMORY_KIB:
            raise ValueError(
                f"Argon2 memory_kib {self.memory_kib}, want {min_memory}..{ARGON2_MAX_MEMORY_KIB}"
            )

    def to_dict(self) -> dict[str, int]:
        """Return ``{"time_cost": t, "memory_kib": m, "parallelism": p}``."""
        return {name: getattr(self, name) for name in _PARAM_FIELDS}

    @classmethod
    def from_dict(cls, d: Any) -> Argon2Params:
        """Inverse of ``to_dict``. Raises ``ValueError`` unless ``d`` is a
        mapping with exactly those three keys and valid integer values."""
        if not isinstance(d, dict):
            raise ValueError(  # noqa: TRY004
                f"Argon2 parameters must be a dict, got {type(d).__name__}"
            )
        if set(d) != set(_PARAM_FIELDS):
            raise ValueError(
                f"Argon2 parameters need exactly the keys {', '.join(_PARAM_FIELDS)}"
            )
        return cls(**{name: d[name] for name in _PARAM_FIELDS})


# OWASP Password Storage Cheat Sheet's Argon2id option t=2, m=19 MiB, p=1.
# 19 MiB is below glibc's 32 MiB ceiling for its dynamic mmap threshold, so
# after the first tag the allocator can reuse heap memory instead of paying
# for a fresh mmap/munmap (and page faults) on every tag.
DEFAULT_ARGON2 = Argon2Params(time_cost=2, memory_kib=19456, parallelism=1)


def compute_tag(
    tag_key: bytes, salt: bytes, params: Argon2Params, field: str, canonical_value: str
) -> bytes:
    """Return the 32-byte tag of ``field`` = ``canonical_value`` (layout in the module docstring).

    Requires a 32-byte ``tag_key`` (``derive_subkey(petition_key, "tags")``),
    a salt of at least 16 bytes and a non-empty ``field`` without NUL;
    raises ``ValueError`` otherwise. ``canonical_value`` must already be in
    canonical form (``crypto.normalise``): this function does not normalise.
    """
    if len(tag_key) != TAG_KEY_BYTES:
        raise ValueError(f"tag key is {len(tag_key)} bytes, want {TAG_KEY_BYTES}")
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(f"salt is {len(salt)} bytes, want at least {MIN_SALT_BYTES}")
    if not field or "\x00" in field:
        raise ValueError("field must be non-empty and contain no NUL")
    mac = hmac.HMAC(tag_key, hashes.SHA256())
    mac.update(field.encode("utf-8") + b"\x00" + canonical_value.encode("utf-8"))
    return hash_secret_raw(
        secret=mac.finalize(),
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=TAG_BYTES,
        type=Type.ID,
    )


def person_tag(
    tag_key: bytes,
    salt: bytes,
    params: Argon2Params,
    canonical_name: str,
    canonical_postcode: str,
) -> bytes:
    """Return the tag of field "person" with value ``canonical_name + "\\n" + canonical_postcode``.

    A canonical name never contains a newline (whitespace is collapsed to
    single spaces), so the split is unambiguous; ``ValueError`` if it does.
    """
    if "\n" in canonical_name or "\n" in canonical_postcode:
        raise ValueError("canonical name and postcode must not contain a newline")
    return compute_tag(
        tag_key, salt, params, "person", canonical_name + "\n" + canonical_postcode
    )


def email_tag(
    tag_key: bytes, salt: bytes, params: Argon2Params, canonical_email: str
) -> bytes:
    """Return the tag of field "email" with value ``canonical_email``."""
    return compute_tag(tag_key, salt, params, "email", canonical_email)
