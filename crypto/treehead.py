"""Signed tree heads (DESIGN.md §7).

A tree head commits to the first ``size`` leaves of one petition's log::

    {"count":N,"petition":SLUG,"root":HEX64,"size":N,"time":"2026-11-29T18:47Z"}

as canonical JSON (UTF-8, sorted keys, no spaces). ``count`` is signature
leaves minus withdrawal leaves among them; ``time`` is UTC to the minute.

The log key signs, with Ed25519 (RFC 8032, via ``cryptography``)::

    SIGNED_PREFIX || to_json()     SIGNED_PREFIX = b"countersign/tree-head/v1\\n"

The prefix keeps a head signature from ever being valid as any other message
the same key might sign, and carries the format version.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from hashlib import sha256

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from crypto.errors import InvalidBundle, InvalidKey, InvalidSignature
from crypto.merkle import HASH_BYTES

SIGNED_PREFIX = b"countersign/tree-head/v1\n"
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_CHARS = 16
TIME_FORMAT = "%Y-%m-%dT%H:%MZ"

_FIELDS = frozenset({"count", "petition", "root", "size", "time"})
_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}Z")


def _is_int(value: object) -> bool:
    return type(value) is int  # bool is an int subclass; a head never holds one


@dataclass(frozen=True)
class TreeHead:
    """One signed statement of a log's state. Construction checks every field (ValueError)."""

    petition: str
    size: int
    root: bytes
    count: int
    time: str

    def __post_init__(self) -> None:
        if not isinstance(self.petition, str) or not self.petition:
            raise ValueError("petition must be a non-empty string")
        if not _is_int(self.size) or self.size < 0:
            raise ValueError("size must be a non-negative integer")
        if not _is_int(self.count) or not 0 <= self.count <= self.size:
            raise ValueError(f"count must be an integer in [0, size], got {self.count!r} for size {self.size}")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_BYTES:
            raise ValueError(f"root must be {HASH_BYTES} bytes")
        if not isinstance(self.time, str) or not _TIME.fullmatch(self.time):
            raise ValueError("time must be UTC to the minute, like 2026-11-29T18:47Z")
        try:
            datetime.strptime(self.time, TIME_FORMAT)
        except ValueError:
            raise ValueError("time is not a real date and time") from None

    def to_dict(self) -> dict:
        return {
            "count": self.count,
            "petition": self.petition,
            "root": self.root.hex(),
            "size": self.size,
            "time": self.time,
        }

    def to_json(self) -> bytes:
        """Canonical JSON bytes: the exact bytes that are signed (after SIGNED_PREFIX)."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")

    @classmethod
    def from_dict(cls, data: object) -> TreeHead:
        """Build a head from parsed JSON, strictly: exact keys and types. Raises InvalidBundle."""
        if not isinstance(data, dict):
            raise InvalidBundle("tree head is not a JSON object")
        if set(data) != _FIELDS:
            raise InvalidBundle(f"tree head must have exactly the keys {sorted(_FIELDS)}, has {sorted(data)}")
        for name in ("size", "count"):
            if not _is_int(data[name]) or data[name] < 0:
                raise InvalidBundle(f"tree head {name} must be a non-negative integer")
        if not isinstance(data["root"], str) or not _HEX64.fullmatch(data["root"]):
            raise InvalidBundle("tree head root must be 64 lowercase hex digits")
        try:
            return cls(
                petition=data["petition"],
                size=data["size"],
                root=bytes.fromhex(data["root"]),
                count=data["count"],
                time=data["time"],
            )
        except ValueError as exc:
            raise InvalidBundle(f"tree head: {exc}") from None

    @classmethod
    def from_json(cls, raw: bytes) -> TreeHead:
        """Parse a head from JSON bytes (duplicate keys refused). Raises InvalidBundle."""
        return cls.from_dict(loads_strict(raw))


def loads_strict(raw: bytes | str) -> object:
    """json.loads refusing duplicate keys and NaN/Infinity; raises InvalidBundle."""

    def pairs(items: list[tuple[str, object]]) -> dict:
        result = dict(items)
        if len(result) != len(items):
            raise InvalidBundle("JSON object has a duplicate key")
        return result

    def constant(name: str) -> object:
        raise InvalidBundle(f"JSON has non-standard number {name}")

    try:
        return json.loads(raw, object_pairs_hook=pairs, parse_constant=constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidBundle(f"not valid JSON: {exc}") from None


def format_minute(moment: datetime) -> str:
    """Return a timezone-aware datetime as UTC to the minute, "2026-11-29T18:47Z"."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_minute needs a timezone-aware datetime")
    return moment.astimezone(UTC).strftime(TIME_FORMAT)


def key_id(public_key_raw: bytes) -> str:
    """Return the first 16 hex digits of SHA-256 of the raw 32-byte Ed25519 public key."""
    if not isinstance(public_key_raw, bytes) or len(public_key_raw) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} raw bytes")
    return sha256(public_key_raw).hexdigest()[:KEY_ID_CHARS]


def sign_head(private_key: Ed25519PrivateKey, head: TreeHead) -> bytes:
    """Return the 64-byte Ed25519 signature of SIGNED_PREFIX || head.to_json()."""
    return private_key.sign(SIGNED_PREFIX + head.to_json())


def verify_head(public_key_raw: bytes, head: TreeHead, signature: bytes) -> None:
    """Check a head's signature under a raw 32-byte Ed25519 public key.

    Returns None or raises InvalidSignature (for a malformed key or signature too).
    """
    if not isinstance(public_key_raw, bytes) or len(public_key_raw) != PUBLIC_KEY_BYTES:
        raise InvalidSignature(f"public key must be {PUBLIC_KEY_BYTES} bytes")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise InvalidSignature(f"signature must be {SIGNATURE_BYTES} bytes")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(public_key_raw)
        public_key.verify(signature, SIGNED_PREFIX + head.to_json())
    except (_CryptographyInvalidSignature, ValueError):
        raise InvalidSignature(f"signature of the tree head at size {head.size} does not verify") from None
