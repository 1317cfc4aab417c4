"""Log entries (DESIGN.md §7): canonical JSON, stored and hashed verbatim.

A leaf is UTF-8 JSON with sorted keys and no spaces, i.e. exactly
``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``.
Two kinds, byte for byte::

    {"channel":"online"|"paper","day":"YYYY-MM-DD","email":HEX64|null,
     "person":HEX64|null,"receipt":HEX64|null,"type":"signature","v":1}

    {"day":"YYYY-MM-DD","of":INDEX,"reason":"signer"|"superseded",
     "type":"withdrawal","v":1}

(each on one line). HEX64 is 32 bytes as lowercase hex: ``person`` and ``email``
are the identity tags of DESIGN.md §6, ``receipt`` is SHA-256 of the signer's
receipt (§8). ``of`` is the index of the withdrawn signature leaf, a JSON
integer without leading zeros.

Exactly one identity tag is published per signature, the one it is
deduplicated by: ``person`` is null if and only if the channel is online and
``email`` is not null. So:

- paper: ``email`` null, ``person`` HEX64;
- online on a petition that asks for email: ``email`` HEX64, ``person`` null;
- online on a petition that does not: ``email`` null, ``person`` HEX64.

Why online signatures with an email tag publish no person tag: the form
computes the person tag of whatever name and postcode is typed, so a prober
could sign *as* a target with their own address, read the target's person tag
in their own leaf (from their receipt proof) and look for it elsewhere in the
log; an equal tag would say the target signed. Withholding it removes that
equality oracle where deduplication does not need the person tag. This
deviates from DESIGN.md §7, which put a person tag in every signature leaf
(see THREAT_MODEL.md, R1). Where the person tag is what deduplicates (paper,
and online without email) it is still published so auditors can check it.

The parser accepts only that exact encoding (anything else, even an added
space, has a different leaf hash and so is a different entry), and does it with
one compiled regular expression so an auditor can parse a million leaves fast.
"""

from __future__ import annotations

import binascii
import json
import re
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

from crypto.errors import InvalidBundle

TAG_BYTES = 32
CHANNELS = ("online", "paper")
REASONS = ("signer", "superseded")
LEAF_VERSION = 1
MAX_INDEX = 10**18 - 1  # "of" has at most 18 digits, so the parser never builds a huge int

# Groups: channel, day, email, person, receipt (each of the last three None for null).
# The 64-character hex fields are matched loosely, as [^"]{64}: a character
# class over 192 characters is most of the cost of parsing a leaf. A match is
# canonical only once each hex field is lowercase hex: parse_leaf checks with
# check_hex() and bytes.islower() on the line (every literal part is lower
# case, so an upper-case A-F can only sit in a hex field); the audit checks a
# whole batch's fields at once (audit._check_hex_since).
SIGNATURE_RE = re.compile(
    rb'\{"channel":"(online|paper)","day":"([0-9]{4}-[0-9]{2}-[0-9]{2})",'
    rb'"email":(?:"([^"]{64})"|null),"person":(?:"([^"]{64})"|null),'
    rb'"receipt":(?:"([^"]{64})"|null),"type":"signature","v":1\}'
)
# Groups: day, of, reason. Fully strict.
WITHDRAWAL_RE = re.compile(
    rb'\{"day":"([0-9]{4}-[0-9]{2}-[0-9]{2})","of":(0|[1-9][0-9]{0,17}),'
    rb'"reason":"(signer|superseded)","type":"withdrawal","v":1\}'
)

# binascii.unhexlify refuses anything but hex digits (no whitespace, unlike
# bytes.fromhex); it accepts A-F, which the islower() test on the line refuses.
check_hex = binascii.unhexlify


@dataclass(frozen=True)
class SignatureLeaf:
    channel: str
    day: date
    email: bytes | None
    person: bytes | None  # None exactly when online with an email tag (see the module docstring)
    receipt: bytes | None


@dataclass(frozen=True)
class WithdrawalLeaf:
    of: int
    reason: str
    day: date


def _canonical(obj: dict) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _tag_hex(name: str, value: bytes | None, nullable: bool) -> str | None:
    if value is None and nullable:
        return None
    if not isinstance(value, bytes) or len(value) != TAG_BYTES:
        raise ValueError(f"{name} must be {TAG_BYTES} bytes")
    return value.hex()


def _day(day: date) -> str:
    # datetime is a date subclass; its isoformat() would carry the time.
    if not isinstance(day, date) or hasattr(day, "hour"):
        raise ValueError("day must be a datetime.date")
    return day.isoformat()


def signature_leaf(channel: str, person: bytes | None, email: bytes | None, receipt: bytes | None, day: date) -> bytes:
    """Return the canonical bytes of a signature leaf. Raises ValueError on bad input.

    ``person`` must be None exactly when ``channel`` is online and ``email``
    is given: such a leaf must not publish the person tag, which would let a
    prober who signs as someone find that person's other signature (see the
    module docstring). A paper signature has no email tag and must have a
    person tag; so must an online signature without an email tag.
    """
    if channel not in CHANNELS:
        raise ValueError(f"channel must be one of {CHANNELS}")
    if channel == "paper" and email is not None:
        raise ValueError("a paper signature has no email tag")
    if email is not None and person is not None:
        raise ValueError("an online signature with an email tag must not publish its person tag (person=None)")
    if email is None and person is None:
        raise ValueError("a signature without an email tag must carry a person tag")
    return _canonical(
        {
            "channel": channel,
            "day": _day(day),
            "email": _tag_hex("email", email, nullable=True),
            "person": _tag_hex("person", person, nullable=email is not None),
            "receipt": _tag_hex("receipt", receipt, nullable=True),
            "type": "signature",
            "v": LEAF_VERSION,
        }
    )


def withdrawal_leaf(of: int, reason: str, day: date) -> bytes:
    """Return the canonical bytes of a withdrawal of leaf ``of``. Raises ValueError on bad input."""
    if type(of) is not int or not 0 <= of <= MAX_INDEX:
        raise ValueError(f"of must be an integer leaf index in [0, {MAX_INDEX}]")
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {REASONS}")
    return _canonical({"day": _day(day), "of": of, "reason": reason, "type": "withdrawal", "v": LEAF_VERSION})


@lru_cache(maxsize=4096)
def valid_day(day: bytes) -> bool:
    """Whether ``day`` (matched as NNNN-NN-NN) is a real calendar date. Cached: days repeat."""
    try:
        date.fromisoformat(day.decode("ascii"))
    except ValueError:
        return False
    return True


def parse_leaf(raw: bytes) -> SignatureLeaf | WithdrawalLeaf:
    """Parse a leaf, accepting only its canonical encoding; raise InvalidBundle otherwise.

    Also refuses a signature leaf that breaks the tag invariant of the module
    docstring (an online leaf with an email tag that publishes a person tag,
    one with neither tag, a paper leaf with an email tag).
    """
    m = SIGNATURE_RE.fullmatch(raw)
    if m is not None:
        channel, day, email, person, receipt = m.groups()
        try:
            email, person, receipt = (None if f is None else check_hex(f) for f in (email, person, receipt))
        except binascii.Error:
            raise InvalidBundle("signature leaf has a tag that is not hex") from None
        if not raw.islower():
            raise InvalidBundle("signature leaf has upper-case hex")
        if not valid_day(day):
            raise InvalidBundle("signature leaf has an impossible day")
        if channel == b"paper" and email is not None:
            raise InvalidBundle("paper signature leaf carries an email tag")
        if email is not None and person is not None:
            raise InvalidBundle("online signature leaf with an email tag publishes a person tag (must be null)")
        if email is None and person is None:
            raise InvalidBundle("signature leaf has neither an email tag nor a person tag")
        return SignatureLeaf(
            channel=channel.decode("ascii"),
            day=date.fromisoformat(day.decode("ascii")),
            email=email,
            person=person,
            receipt=receipt,
        )
    m = WITHDRAWAL_RE.fullmatch(raw)
    if m is not None:
        day, of, reason = m.groups()
        if not valid_day(day):
            raise InvalidBundle("withdrawal leaf has an impossible day")
        return WithdrawalLeaf(of=int(of), reason=reason.decode("ascii"), day=date.fromisoformat(day.decode("ascii")))
    raise InvalidBundle("leaf is not a canonical signature or withdrawal")
