"""Offline audit of a petition's public log, and the ``signing-audit`` command.

Needs nothing but a bundle file: no database, no web framework, no network.

Bundle format ``countersign-bundle/v1`` (served at ``/p/<slug>/audit/bundle``):
JSON Lines, UTF-8, one value per line, each line ending in "\\n".

1. Header, one line::

       {"format":"countersign-bundle/v1","key_id":HEX16,"petition":SLUG,"public_key":HEX64}

   ``public_key`` is the raw 32-byte Ed25519 log key in lowercase hex;
   ``key_id`` is the first 16 hex digits of its SHA-256 (crypto.treehead.key_id).

2. Every signed tree head, one per line, in strictly increasing size::

       {"head":{"count":N,"petition":SLUG,"root":HEX64,"size":N,"time":"2026-11-29T18:47Z"},
        "signature":HEX128}

   (on one line) where ``signature`` is Ed25519 over
   crypto.treehead.SIGNED_PREFIX || the head's canonical JSON.

3. Every leaf, in log order: the leaf's canonical JSON exactly as stored
   (crypto.leaves), so the line without its "\\n" IS the leaf, and its leaf
   hash is SHA-256(0x00 || line). There are exactly as many leaves as the
   last head's size.

Key order and spacing within header and head lines do not matter (they are
parsed as JSON, duplicate keys refused); leaf lines must be byte-exact.

What ``verify_bundle`` checks, in one streaming pass:
- the header is well formed and its key_id matches its public key;
- the key is the one the auditor pinned (``--key``), when one is given;
- every head is well formed, for this petition, signed by that key, larger
  than the one before, dated no earlier than it and not in the future (beyond
  MAX_CLOCK_SKEW); the last covers exactly the leaves given; two signed heads
  of one size with different roots are a fork (Equivocation, with both heads
  as evidence);
- every leaf is canonical, and every signature leaf publishes exactly the tag
  it is deduplicated by: an online one with an email tag has a null person tag
  (crypto.leaves explains why), a paper one or an online one without an email
  tag has a person tag and no email tag;
- the root of every head is recomputed from the leaves
  with one Frontier, so every head commits to a prefix of the same log (which is
  what consistency between heads means);
- an online signature leaf carries a receipt digest and a paper one none; no
  two leaves carry the same receipt digest; no leaf is dated after the head
  that publishes it;
- a withdrawal withdraws an earlier, still-active signature leaf, and
  "superseded" ones withdraw paper signatures only, never more of them in all
  than there are active online signatures at the head (the server supersedes
  a paper signature only for a person with a counted online signature, and
  only in the batch that closes the petition, signing/ledger/publishing.py);
- at every head: its count is signature leaves minus withdrawal leaves, no two
  active signatures share an email tag, and no two active signatures share a
  published person tag, i.e. paper vs paper, paper vs online without email,
  online without email vs each other (DESIGN.md §6).
  Rules are checked at heads only: within one batch a new online signature and
  the withdrawal of the paper signature it supersedes may come in either order.

What the log cannot show, since online signatures with an email tag publish
no person tag: whether such a signature shares a person with a paper
signature (the server withdraws the paper one as "superseded"; an auditor sees
the withdrawal but cannot match it to the online leaf), or with another online
signature (so there is no "same name and postcode, different email" figure).

Receipt proof file ``countersign-receipt-proof/v1`` (downloaded from a signer's
receipt page), one JSON object::

    {"format":"countersign-receipt-proof/v1","petition":SLUG,"public_key":HEX64,
     "leaf":"<the leaf's canonical JSON, as a string>","index":N,
     "head":{...tree head...},"signature":HEX128,"proof":[HEX64,...]}

It shows that the signature leaf was in the log at that head; only the full
bundle shows it is still counted and that the log was never rewritten.
``signing-audit proof CODE FILE`` also checks that the leaf carries CODE's
digest (so another signer's file does not pass as yours); ``--key`` pins the
log key, which the file carries as the signer's receipt page showed it.
"""

from __future__ import annotations

import argparse
import itertools
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from hashlib import sha256
from typing import BinaryIO

from crypto import fork
from crypto.errors import CryptoError, Equivocation, InvalidBundle, InvalidProof, InvalidReceipt, InvalidSignature
from crypto.leaves import SIGNATURE_RE, WITHDRAWAL_RE, SignatureLeaf, parse_leaf, valid_day
from crypto.merkle import EMPTY_ROOT, LEAF_PREFIX, NODE_PREFIX, leaf_hash, root_of, root_of_edge, verify_inclusion
from crypto.note import log_verifier
from crypto.policy import Policy, check_checkpoint, parse_policy
from crypto.receipts import parse_receipt, receipt_digest
from crypto.treehead import TreeHead, format_minute, key_id, loads_strict, verify_head

BUNDLE_FORMAT = "countersign-bundle/v1"
PROOF_FORMAT = "countersign-receipt-proof/v1"
# A head may be dated this far ahead of the auditor's clock (clocks differ a little).
MAX_CLOCK_SKEW = timedelta(minutes=5)
PROGRESS_EVERY_LEAVES = 100_000

_HEADER_KEYS = frozenset({"format", "key_id", "petition", "public_key"})
_HEAD_LINE_KEYS = frozenset({"head", "signature"})
_PROOF_KEYS = frozenset({"format", "petition", "public_key", "leaf", "index", "head", "signature", "proof"})
# Since witnessing: the C2SP checkpoint of the same head, with its cosignatures.
_PROOF_OPTIONAL_KEYS = frozenset({"checkpoint"})
_LEAF_STARTS = (b'{"channel"', b'{"day"')  # every leaf line starts so; no head line can
_HEX16 = re.compile(r"[0-9a-f]{16}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_HEX128 = re.compile(r"[0-9a-f]{128}")

# What a leaf index holds, one byte per leaf (bytearray). Active signatures are
# 1-3; _WITHDRAWN is or-ed in when one is withdrawn.
_WITHDRAWAL = 0
_ONLINE = 1  # online with an email tag (and so no published person tag)
_ONLINE_NO_EMAIL = 2  # published person tag: may share it with no active signature
_PAPER = 3  # published person tag: may share it with no active signature
_WITHDRAWN = 4


class ReceiptNotFound(InvalidReceipt):
    """No signature leaf in the bundle carries the receipt's digest."""


@dataclass(frozen=True)
class BundleReport:
    """What a verified bundle says. Figures are for the latest head (= all leaves)."""

    petition: str
    key_id: str
    size: int
    count: int
    heads: int
    online: int  # active online signatures
    paper: int  # active paper signatures
    withdrawals: int  # withdrawal leaves
    latest: TreeHead


@dataclass(frozen=True)
class ReceiptReport:
    """Where one signer's signature stands in a verified bundle."""

    index: int  # the signature leaf
    counted: bool  # active at the latest head
    withdrawn_by: int | None  # the withdrawal leaf, if any
    withdrawal_reason: str | None  # "signer" or "superseded"
    included_in: tuple[int, ...]  # sizes of the signed heads that include the leaf
    bundle: BundleReport


def _strip(line: bytes) -> bytes:
    return line[:-1] if line[-1:] == b"\n" else line


def _parse_header(line: bytes | None) -> tuple[str, bytes, str]:
    if line is None:
        raise InvalidBundle("bundle is empty: no header line")
    data = loads_strict(_strip(line))
    if not isinstance(data, dict) or set(data) != _HEADER_KEYS:
        raise InvalidBundle(f"header line must be a JSON object with exactly the keys {sorted(_HEADER_KEYS)}")
    if data["format"] != BUNDLE_FORMAT:
        raise InvalidBundle(f"header format is {data['format']!r}, want {BUNDLE_FORMAT!r}")
    petition = data["petition"]
    if not isinstance(petition, str) or not petition:
        raise InvalidBundle("header petition must be a non-empty string")
    if not isinstance(data["public_key"], str) or not _HEX64.fullmatch(data["public_key"]):
        raise InvalidBundle("header public_key must be 64 lowercase hex digits")
    public_key = bytes.fromhex(data["public_key"])
    if not isinstance(data["key_id"], str) or not _HEX16.fullmatch(data["key_id"]):
        raise InvalidBundle("header key_id must be 16 lowercase hex digits")
    if data["key_id"] != key_id(public_key):
        raise InvalidBundle(f"header key_id {data['key_id']} does not match its public key ({key_id(public_key)})")
    return petition, public_key, data["key_id"]


def _parse_head_line(line: bytes, number: int, petition: str) -> tuple[TreeHead, bytes]:
    """Parse the ``number``-th head line (1-based)."""
    try:
        data = loads_strict(line)
        if not isinstance(data, dict) or set(data) != _HEAD_LINE_KEYS:
            raise InvalidBundle('must be a JSON object with exactly the keys "head" and "signature"')
        if not isinstance(data["signature"], str) or not _HEX128.fullmatch(data["signature"]):
            raise InvalidBundle("signature must be 128 lowercase hex digits")
        head = TreeHead.from_dict(data["head"])
    except InvalidBundle as exc:
        raise InvalidBundle(f"head line {number}: {exc}") from None
    if head.petition != petition:
        raise InvalidBundle(
            f"head line {number} (size {head.size}) is for petition {head.petition!r}, not {petition!r}"
        )
    return head, bytes.fromhex(data["signature"])


def _read_heads(
    it: Iterator[bytes], petition: str, public_key: bytes, now: datetime
) -> tuple[list[TreeHead], bytes | None]:
    """Read and verify the head lines; return them and the first leaf line (or None).

    Each head is signed by the bundle's key, larger than the one before, dated
    no earlier than it and no later than ``now`` (plus MAX_CLOCK_SKEW). Two
    signed heads of one size with different roots are a fork (Equivocation).
    """
    heads: list[TreeHead] = []
    signatures: list[bytes] = []
    first_leaf = None
    latest_allowed = format_minute(now + MAX_CLOCK_SKEW)
    for line in it:
        line = _strip(line)
        if line.startswith(_LEAF_STARTS):
            first_leaf = line
            break
        head, signature = _parse_head_line(line, len(heads) + 1, petition)
        verify_head(public_key, head, signature)
        if heads and head.size <= heads[-1].size:
            _refuse_out_of_order(heads, signatures, head, signature, public_key)
        # TIME_FORMAT strings compare as the times they stand for.
        if heads and head.time < heads[-1].time:
            raise InvalidBundle(
                f"head at size {head.size} is dated {head.time}, before the previous head's {heads[-1].time}"
            )
        if head.time > latest_allowed:
            raise InvalidBundle(f"head at size {head.size} is dated {head.time}, in the future")
        heads.append(head)
        signatures.append(signature)
    if not heads:
        raise InvalidBundle("bundle has no signed tree head")
    return heads, first_leaf


def _refuse_out_of_order(
    heads: list[TreeHead], signatures: list[bytes], head: TreeHead, signature: bytes, public_key: bytes
) -> None:
    """Refuse a validly signed head not above the previous one; name a fork as one."""
    for earlier, earlier_signature in zip(heads, signatures, strict=True):
        if earlier.size == head.size and earlier.root != head.root:
            raise Equivocation(
                f"fork: the log key {key_id(public_key)} signed two different heads of size {head.size}",
                fork_evidence(public_key, (earlier, earlier_signature), (head, signature)),
            )
    raise InvalidBundle(
        f"head line {len(heads) + 1} has size {head.size}, not above the previous head's {heads[-1].size}"
    )


def fork_evidence(public_key: bytes, first: tuple[TreeHead, bytes], second: tuple[TreeHead, bytes]) -> str:
    """Two signed heads that cannot both be true, as a fork proof (crypto.fork) anyone can re-check."""
    statements = [{"head": h.to_dict(), "signature": s.hex()} for h, s in (first, second)]
    return fork.dumps({"format": fork.FORK_FORMAT, "key": public_key.hex(), "statements": statements, "proof": []})


def _first_pair(groups: Iterable[set[int]]) -> tuple[int, int]:
    return min(tuple(sorted(group)[:2]) for group in groups)


def _check_head(
    head: TreeHead,
    prev_size: int | None,
    root: bytes,
    count: int,
    kinds: bytearray,
    email_more: dict[bytes, set[int]],
    person_more: dict[bytes, set[int]],
) -> None:
    """Check one head against the log state after its last leaf."""
    size = head.size
    if root != head.root:
        if prev_size is None:
            raise InvalidProof(f"root of the head at size {size} does not match leaves 0..{size - 1}")
        raise InvalidProof(
            f"root of the head at size {size} does not match leaves 0..{size - 1}: "
            f"leaves {prev_size}..{size - 1} were altered, or the head at size {size} is inconsistent "
            f"with the log that earlier heads commit to (size {prev_size})"
        )
    if head.count != count:
        raise InvalidBundle(f"head at size {size} says count {head.count}, but its leaves give {count}")
    if email_more:
        a, b = _first_pair(email_more.values())
        raise InvalidBundle(
            f"at the head of size {size}, leaves {a} and {b} are both active signatures with the same email tag"
        )
    # Only paper and email-less online signatures publish person tags, and
    # each of them may share it with no active signature: any shared one is a breach.
    if person_more:
        a, b = _first_pair(person_more.values())
        what = "a paper signature" if kinds[a] == _PAPER else "an online signature without an email tag"
        raise InvalidBundle(
            f"at the head of size {size}, leaf {a} ({what}) shares its person tag with active signature leaf {b}"
        )


def _both_tags(index: int, channel: bytes) -> str:
    """The message for a signature leaf that publishes both an email and a person tag (rare path)."""
    if channel == b"paper":
        return f"leaf {index} is a paper signature with an email tag"
    return f"leaf {index} is an online signature with an email tag that publishes a person tag (must be null)"


def _share(first: dict[bytes, int], more: dict[bytes, set[int]], tag: bytes, index: int) -> None:
    """Record ``index`` as a further active holder of ``tag``, already held by first[tag]."""
    group = more.get(tag)
    if group is None:
        more[tag] = {first[tag], index}
    else:
        group.add(index)


def _drop(first: dict[bytes, int], more: dict[bytes, set[int]], tag: bytes, index: int) -> None:
    group = more.get(tag)
    if group is None:
        del first[tag]
        return
    group.discard(index)
    if len(group) == 1:
        first[tag] = group.pop()
        del more[tag]
    elif first[tag] == index:
        first[tag] = next(iter(group))


def _scan(
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None,
    receipt: bytes | None = None,
    pinned_key: bytes | None = None,
    now: datetime | None = None,
) -> tuple[BundleReport, list[TreeHead], int | None, tuple[int, str] | None]:
    """Verify a bundle; also find the signature leaf whose receipt digest is ``receipt``.

    Returns (report, heads, that leaf's index, (withdrawal leaf, reason) if it was withdrawn).

    This loop runs once per leaf, so it is written for speed: everything is a
    local, a leaf's tags become dict keys straight from the regex match (as
    hex), the rules of DESIGN.md §6 are kept as "first holder" dicts (one
    setdefault per leaf: its email tag, or else its published person tag)
    plus groups of holders for the rare shared tags, and Frontier.push is
    inlined (a method call per leaf costs about 7% of the whole audit). The
    regex matches hex fields loosely; that they are lowercase hex is checked
    for a whole batch at once at each head (_check_hex_since), in one pass in
    C, instead of three conversions and a scan of the line per leaf.
    """
    it = iter(lines)
    petition, public_key, kid = _parse_header(next(it, None))
    check_pinned_key(public_key, pinned_key)
    heads, first_leaf = _read_heads(it, petition, public_key, datetime.now(UTC) if now is None else now)
    leaves = it if first_leaf is None else itertools.chain((first_leaf,), it)

    sig_match = SIGNATURE_RE.fullmatch
    wd_match = WITHDRAWAL_RE.fullmatch
    days_ok: set[bytes] = set()
    edge: list[bytes] = []  # Frontier of the leaves so far: one hash per set bit of index
    edge_pop = edge.pop
    edge_append = edge.append
    kinds = bytearray()
    kinds_append = kinds.append
    # The one tag each signature leaf publishes (its kind says which); None for withdrawals.
    tags: list[bytes | None] = []
    tags_append = tags.append
    last_day = b""
    withdrawn_by: dict[int, tuple[int, str]] = {}
    email_first: dict[bytes, int] = {}
    email_more: dict[bytes, set[int]] = {}
    person_first: dict[bytes, int] = {}
    person_more: dict[bytes, set[int]] = {}
    active_online = active_paper = withdrawals = 0
    # For the rule on "superseded" withdrawals (see _check_batch).
    withdrawn_online = superseded = 0
    latest_day = b""  # the latest day on any leaf so far (days compare as bytes)
    receipts: list[bytes] = []  # as hex, in the order of the online signature leaves
    receipts_append = receipts.append
    hex_checked = receipts_checked = 0  # leaves, and their receipts, whose hex fields are known good

    head_iter = iter(heads)
    head = next(head_iter)
    prev_size: int | None = None
    if head.size == 0:
        _check_head(head, None, EMPTY_ROOT, 0, kinds, email_more, person_more)
        prev_size = 0
        head = next(head_iter, None)
    next_progress = PROGRESS_EVERY_LEAVES if progress is not None else -1
    next_stop = _next_stop(head, next_progress)

    index = 0
    for line in leaves:
        if line[-1:] == b"\n":
            line = line[:-1]
        m = sig_match(line)
        if m is not None:
            channel, day, email, person, receipt_hex = m.groups()
            # Exactly one of email and person is published (crypto.leaves).
            if email is None:
                if person is None:
                    raise InvalidBundle(f"leaf {index} is a signature with neither an email tag nor a person tag")
            elif person is not None:
                raise InvalidBundle(_both_tags(index, channel))
            # Consecutive leaves mostly share a day: compare before looking it up.
            if day != last_day and day not in days_ok:
                if not valid_day(day):
                    raise InvalidBundle(f"leaf {index} has an impossible day")
                days_ok.add(day)
                if day > latest_day:
                    latest_day = day
            last_day = day
            # Online signatures carry the signer's receipt digest; paper ones have none.
            if email is None:
                if channel == b"paper":
                    if receipt_hex is not None:
                        raise InvalidBundle(f"leaf {index} is a paper signature with a receipt (paper has none)")
                    kind = _PAPER
                    active_paper += 1
                else:
                    if receipt_hex is None:
                        raise InvalidBundle(_no_receipt(index))
                    receipts_append(receipt_hex)
                    kind = _ONLINE_NO_EMAIL
                    active_online += 1
                if person_first.setdefault(person, index) != index:
                    _share(person_first, person_more, person, index)
            else:
                if channel == b"paper":
                    raise InvalidBundle(f"leaf {index} is a paper signature with an email tag")
                if receipt_hex is None:
                    raise InvalidBundle(_no_receipt(index))
                receipts_append(receipt_hex)
                kind = _ONLINE
                active_online += 1
                if email_first.setdefault(email, index) != index:
                    _share(email_first, email_more, email, index)
            kinds_append(kind)
            tags_append(person if email is None else email)
        else:
            m = wd_match(line)
            if m is None:
                if line.startswith(b"{") and b'"head"' in line:
                    raise InvalidBundle(f"a tree head line comes after leaf {index - 1}; heads must precede leaves")
                raise InvalidBundle(f"leaf {index} is not the canonical JSON of a signature or withdrawal leaf")
            day, of_digits, reason = m.groups()
            if not valid_day(day):
                raise InvalidBundle(f"leaf {index} has an impossible day")
            if day > latest_day:
                latest_day = day
            of = int(of_digits)
            _check_withdrawal(index, of, reason, kinds, withdrawn_by)
            kind = kinds[of]
            if reason == b"superseded":
                superseded += 1
            kinds[of] = kind | _WITHDRAWN
            withdrawn_by[of] = (index, reason.decode("ascii"))
            if kind == _PAPER:
                active_paper -= 1
            else:
                active_online -= 1
                withdrawn_online += 1
            if kind == _ONLINE:
                _drop(email_first, email_more, tags[of], of)
            else:
                _drop(person_first, person_more, tags[of], of)
            withdrawals += 1
            kinds_append(_WITHDRAWAL)
            tags_append(None)
        # Frontier.push, inlined: leaf hash, then merge one complete subtree
        # per trailing 1 bit of the index.
        node = sha256(LEAF_PREFIX + line).digest()
        i = index
        while i & 1:
            node = sha256(NODE_PREFIX + edge_pop() + node).digest()
            i >>= 1
        edge_append(node)
        index += 1
        if index == next_stop:
            if index == next_progress:
                progress(index)
                next_progress += PROGRESS_EVERY_LEAVES
            if head is not None and index == head.size:
                _check_hex_since(hex_checked, receipts_checked, tags, receipts, kinds)
                hex_checked, receipts_checked = index, len(receipts)
                count = active_online + active_paper
                _check_head(head, prev_size, root_of_edge(edge), count, kinds, email_more, person_more)
                _check_batch(head, prev_size, latest_day, active_online, superseded)
                prev_size = index
                head = next(head_iter, None)
            next_stop = _next_stop(head, next_progress)

    _check_hex_since(hex_checked, receipts_checked, tags, receipts, kinds)
    last = heads[-1]
    if index != last.size:
        raise InvalidBundle(f"bundle has {index} leaves, but the last head has size {last.size}")
    # Checked once at the end: building one set in C is cheaper than a lookup per leaf.
    if len(set(receipts)) != len(receipts):
        _refuse_reused_receipt(receipts, kinds)
    found = None if receipt is None else _receipt_leaf(receipts, kinds, receipt.hex().encode("ascii"))
    report = BundleReport(
        petition=petition,
        key_id=kid,
        size=index,
        count=active_online + active_paper,
        heads=len(heads),
        online=active_online,
        paper=active_paper,
        withdrawals=withdrawals,
        latest=last,
    )
    return report, heads, found, withdrawn_by.get(found)


_HEX_DIGITS = b"0123456789abcdef"


def _check_hex_since(
    start: int, first_receipt: int, tags: list[bytes | None], receipts: list[bytes], kinds: bytearray
) -> None:
    """The tags of leaves ``start`` on, and receipts ``first_receipt`` on, are all lowercase hex.

    The regex has matched each as 64 characters other than a quote; deleting
    the hex digits from all of them joined leaves nothing exactly when all
    are hex, in a single pass in C.
    """
    batch_tags = b"".join(filter(None, tags[start:]))
    batch_receipts = b"".join(receipts[first_receipt:])
    if not batch_tags.translate(None, _HEX_DIGITS) and not batch_receipts.translate(None, _HEX_DIGITS):
        return
    online = itertools.compress(itertools.count(start), kinds[start:].translate(_ONLINE_MASK))
    receipt_of = dict(zip(online, receipts[first_receipt:], strict=True))
    for index in range(start, len(tags)):
        for field in (tags[index], receipt_of.get(index)):
            if field is not None and field.translate(None, _HEX_DIGITS):
                if field.lower().translate(None, _HEX_DIGITS):
                    raise InvalidBundle(f"leaf {index} has a tag that is not hex")
                raise InvalidBundle(f"leaf {index} is not canonical: upper-case hex")


def _no_receipt(index: int) -> str:
    return f"leaf {index} is an online signature without a receipt (every online signer is given one)"


# kinds -> 1 for online signature leaves (withdrawn or not), 0 for the rest:
# the i-th receipt digest belongs to the i-th online signature leaf.
_ONLINE_MASK = bytes(1 if k & 3 in (_ONLINE, _ONLINE_NO_EMAIL) else 0 for k in range(256))


def _online_leaves(kinds: bytearray) -> Iterator[int]:
    """Indexes of the online signature leaves, in order (in C: translate, compress)."""
    return itertools.compress(itertools.count(), kinds.translate(_ONLINE_MASK))


def _receipt_leaf(receipts: list[bytes], kinds: bytearray, digest: bytes) -> int | None:
    """The signature leaf carrying ``digest`` (receipts are unique by now), or None."""
    try:
        position = receipts.index(digest)
    except ValueError:
        return None
    return next(itertools.islice(_online_leaves(kinds), position, None))


def _refuse_reused_receipt(receipts: list[bytes], kinds: bytearray) -> None:
    """Name the first two signature leaves that carry the same receipt digest (rare path)."""
    seen: dict[bytes, int] = {}
    for index, digest in zip(_online_leaves(kinds), receipts, strict=True):
        if digest in seen:
            raise InvalidBundle(f"leaves {seen[digest]} and {index} carry the same receipt")
        seen[digest] = index


def _check_batch(head: TreeHead, prev_size: int | None, latest_day: bytes, online: int, superseded: int) -> None:
    """Rules on the log up to a head, checked after the batch it adds.

    - No leaf is dated after the head that publishes it.
    - Every "superseded" withdrawal so far can be matched to a distinct online
      signature still active at the head: the server withdraws a paper
      signature as superseded only for a person whose online signature counts,
      all at once when the petition closes (so that no batch before then says
      which paper signer also signed online). An online leaf with an email tag
      publishes no person tag, so the pairing itself cannot be shown; the
      number can. ``online`` and ``superseded`` are totals up to the head.
    """
    if latest_day > head.time[:10].encode("ascii"):
        raise InvalidBundle(
            f"a leaf up to size {head.size} is dated {latest_day.decode('ascii')}, after its head ({head.time})"
        )
    if superseded > online:
        first = 0 if prev_size is None else prev_size
        raise InvalidBundle(
            f"up to leaf {head.size - 1} (a batch from {first}), {superseded} paper signatures are withdrawn as "
            f"superseded, but only {online} online signatures are active to supersede them"
        )


def check_pinned_key(public_key: bytes, pinned_key: bytes | None) -> None:
    """Refuse a file signed with a key other than the one the auditor pinned."""
    if pinned_key is not None and public_key != pinned_key:
        raise InvalidSignature(
            f"signed by log key {key_id(public_key)}, not the pinned key {key_id(pinned_key)}: "
            "this is not the log you meant to check"
        )


def _next_stop(head: TreeHead | None, next_progress: int) -> int:
    """The next leaf count at which the loop must look up: a head, or progress (-1: never)."""
    stops = [n for n in (-1 if head is None else head.size, next_progress) if n >= 0]
    return min(stops, default=-1)


def _check_withdrawal(
    index: int, of: int, reason: bytes, kinds: bytearray, withdrawn_by: dict[int, tuple[int, str]]
) -> None:
    """Check that leaf ``index`` may withdraw leaf ``of`` (rare path, kept out of the loop)."""
    if of >= index:
        raise InvalidBundle(f"leaf {index} withdraws leaf {of}, which is not an earlier leaf")
    kind = kinds[of]
    if kind == _WITHDRAWAL:
        raise InvalidBundle(f"leaf {index} withdraws leaf {of}, which is a withdrawal, not a signature")
    if kind & _WITHDRAWN:
        raise InvalidBundle(f"leaf {index} withdraws leaf {of}, already withdrawn by leaf {withdrawn_by[of][0]}")
    if reason == b"superseded" and kind != _PAPER:
        raise InvalidBundle(f"leaf {index} withdraws leaf {of} as superseded, but only paper signatures are superseded")


def verify_bundle(
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    key: bytes | None = None,
    now: datetime | None = None,
) -> BundleReport:
    """Verify a whole bundle (see the module docstring) and return its figures.

    ``lines`` yields the bundle's lines as bytes, with or without their "\\n".
    ``progress(leaves_done)`` is called every PROGRESS_EVERY_LEAVES leaves.
    ``key``, the raw log public key the auditor trusts: a bundle under any
    other key is refused (without it, the bundle's own key is taken on trust).
    ``now`` (default: the clock) is what heads may not be dated after.
    Raises InvalidBundle (Equivocation for a fork), InvalidSignature or
    InvalidProof naming the leaf index or head size at fault.
    """
    return _scan(lines, progress, pinned_key=key, now=now)[0]


def verify_receipt(
    code: str,
    lines: Iterable[bytes],
    progress: Callable[[int], None] | None = None,
    key: bytes | None = None,
    now: datetime | None = None,
) -> ReceiptReport:
    """Verify the bundle and find the signature leaf carrying ``code``'s digest.

    Raises InvalidReceipt for a malformed code, ReceiptNotFound when no leaf
    carries it (a new signature may wait for the next batch), and whatever
    verify_bundle raises.
    """
    target = receipt_digest(parse_receipt(code))
    report, heads, index, withdrawal = _scan(lines, progress, target, key, now)
    if index is None:
        raise ReceiptNotFound(
            "no signature in this bundle carries that receipt; a new signature appears with the next published batch"
        )
    return ReceiptReport(
        index=index,
        counted=withdrawal is None,
        withdrawn_by=None if withdrawal is None else withdrawal[0],
        withdrawal_reason=None if withdrawal is None else withdrawal[1],
        included_in=tuple(h.size for h in heads if h.size > index),
        bundle=report,
    )


def verify_receipt_proof(
    document: dict, code: str | None = None, key: bytes | None = None, policy: Policy | None = None
) -> dict[str, int]:
    """Verify a receipt proof file (see the module docstring): the head's
    signature, then the inclusion of the leaf at ``index`` under that head.

    ``code``, the signer's receipt code: the leaf must carry its digest, so
    someone else's proof file does not pass as theirs. ``key``, the raw log
    public key the signer trusts (the file's own key is otherwise taken on
    trust; the file carries the key the signer's receipt page showed).
    ``checkpoint``, when the file has one, is the same head as a C2SP
    checkpoint with witnesses' cosignatures: it must be signed by the same key
    under its origin and match the head; ``policy`` (crypto.policy) then sets
    which witnesses count and how many must have cosigned. Returns {witness:
    cosignature time} for the policy's witnesses that cosigned, or raises
    InvalidBundle (malformed), InvalidReceipt (not this receipt's leaf),
    InvalidSignature (including a quorum not met) or InvalidProof.
    """
    if (
        not isinstance(document, dict)
        or not _PROOF_KEYS <= set(document)
        or not set(document) <= _PROOF_KEYS | _PROOF_OPTIONAL_KEYS
    ):
        raise InvalidBundle(
            f"a receipt proof is a JSON object with the keys {sorted(_PROOF_KEYS)} (and optionally 'checkpoint')"
        )
    if document["format"] != PROOF_FORMAT:
        raise InvalidBundle(f"receipt proof format is {document['format']!r}, want {PROOF_FORMAT!r}")
    public_key_hex = document["public_key"]
    if not isinstance(public_key_hex, str) or not _HEX64.fullmatch(public_key_hex):
        raise InvalidBundle("receipt proof public_key must be 64 lowercase hex digits")
    signature_hex = document["signature"]
    if not isinstance(signature_hex, str) or not _HEX128.fullmatch(signature_hex):
        raise InvalidBundle("receipt proof signature must be 128 lowercase hex digits")
    index = document["index"]
    if type(index) is not int or index < 0:
        raise InvalidBundle("receipt proof index must be a non-negative integer")
    proof_hex = document["proof"]
    if not isinstance(proof_hex, list) or not all(isinstance(p, str) and _HEX64.fullmatch(p) for p in proof_hex):
        raise InvalidBundle("receipt proof proof must be a list of 64-hex-digit hashes")
    if not isinstance(document["leaf"], str):
        raise InvalidBundle("receipt proof leaf must be a string")
    leaf = document["leaf"].encode("utf-8")
    parsed = parse_leaf(leaf)
    if not isinstance(parsed, SignatureLeaf):
        raise InvalidBundle("receipt proof leaf is not a signature leaf")
    if code is not None and parsed.receipt != receipt_digest(parse_receipt(code)):
        raise InvalidReceipt("this proof is for another signature: its leaf does not carry your receipt")
    head = TreeHead.from_dict(document["head"])
    if head.petition != document["petition"]:
        raise InvalidBundle(f"receipt proof head is for petition {head.petition!r}, not {document['petition']!r}")
    public_key = bytes.fromhex(public_key_hex)
    check_pinned_key(public_key, key)
    verify_head(public_key, head, bytes.fromhex(signature_hex))
    verify_inclusion(leaf_hash(leaf), index, head.size, [bytes.fromhex(p) for p in proof_hex], head.root)
    note = document.get("checkpoint")
    if isinstance(note, str):
        _petition_origin(note, head.petition)
    return _check_proof_checkpoint(note, public_key, head, policy or Policy())


def _petition_origin(note: str, petition: str) -> str:
    origin = note.split("\n", 1)[0]
    if not origin.endswith("/" + petition):
        raise InvalidBundle(f"receipt proof checkpoint names log {origin!r}, not one for petition {petition!r}")
    return origin


def _check_proof_checkpoint(note: object, public_key: bytes, head: TreeHead, policy: Policy) -> dict[str, int]:
    """The receipt proof's cosigned checkpoint: same key, same head, the policy's quorum."""
    if note is None:
        if policy.quorum:
            raise InvalidSignature("this proof carries no cosigned checkpoint, and the policy asks for witnesses")
        return {}
    if not isinstance(note, str):
        raise InvalidBundle("receipt proof checkpoint must be a string (a C2SP signed note)")
    origin = note.split("\n", 1)[0]
    try:
        log = log_verifier(origin, public_key)
    except ValueError:
        raise InvalidBundle("receipt proof checkpoint has a malformed origin line") from None
    checkpoint, confirmed = check_checkpoint(note, log, policy)
    if (checkpoint.size, checkpoint.root) != (head.size, head.root):
        raise InvalidBundle(f"receipt proof checkpoint is of size {checkpoint.size}, not the head's {head.size}")
    return confirmed


# --- command line ------------------------------------------------------------


READ_CHUNK_BYTES = 1 << 20


def read_lines(stream: BinaryIO) -> Iterator[bytes]:
    """Yield the lines of a binary stream without their "\n", reading 1 MiB at a time.

    Splitting whole chunks in C is faster than iterating the file and then
    cutting each line's "\n" off in Python.
    """
    return itertools.chain.from_iterable(_chunked_lines(stream))


def _chunked_lines(stream: BinaryIO) -> Iterator[list[bytes]]:
    rest = b""
    while chunk := stream.read(READ_CHUNK_BYTES):
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield lines
    if rest:
        yield [rest]


def _open_bundle(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    return open(path, "rb")  # noqa: SIM115 (closed by the caller)


def _progress(done: int) -> None:
    print(f"checked {done:,} leaves", file=sys.stderr, flush=True)


def _print_bundle(report: BundleReport) -> None:
    latest = report.latest
    print(f"OK: petition {report.petition}, log key {report.key_id}")
    print(f"  {report.heads} signed tree heads verified; latest: size {latest.size}, time {latest.time}")
    print(f"  {report.size} leaves; every head's root, count and the rules on tags hold")
    print(f"  counted: {report.count} (online {report.online}, paper {report.paper})")
    print(f"  withdrawals: {report.withdrawals}")


def parse_key(text: str) -> bytes:
    """A pinned log key as given on the command line: 64 hex digits (GET /audit/key's public_key)."""
    text = text.strip().lower()
    if not _HEX64.fullmatch(text):
        raise CryptoError("--key must be the log's public key: 64 hex digits, as /audit/key publishes it")
    return bytes.fromhex(text)


def _pinned(args: argparse.Namespace) -> bytes | None:
    return None if args.key is None else parse_key(args.key)


def _key_note(args: argparse.Namespace) -> None:
    if args.key is None:
        print("  no --key given: the key was taken from the file; compare it with the one the instance publishes")


def _command_verify(args: argparse.Namespace) -> None:
    key = _pinned(args)
    with _open_bundle(args.bundle) as lines:
        report = verify_bundle(read_lines(lines), _progress, key)
    _print_bundle(report)
    _key_note(args)


def _command_receipt(args: argparse.Namespace) -> None:
    key = _pinned(args)
    with _open_bundle(args.bundle) as lines:
        result = verify_receipt(args.code, read_lines(lines), _progress, key)
    _print_bundle(result.bundle)
    if result.counted:
        print(f"OK: your signature is leaf {result.index} and is counted")
    else:
        print(
            f"OK: your signature is leaf {result.index}; it was withdrawn by leaf "
            f"{result.withdrawn_by} ({result.withdrawal_reason}) and is not counted"
        )
    sizes = result.included_in
    print(f"  included in {len(sizes)} signed tree heads, sizes {sizes[0]} to {sizes[-1]}")
    _key_note(args)


def _policy(args: argparse.Namespace) -> Policy:
    """The witness policy from --policy, or from --witness and --quorum."""
    if args.policy:
        with open(args.policy, encoding="utf-8") as f:
            policy = parse_policy(f.read())
        if args.witness or args.quorum is not None:
            raise CryptoError("give either --policy or --witness/--quorum, not both")
        return policy
    witnesses = tuple(fork.Verifier.from_vkey(v) for v in args.witness)
    return Policy(witnesses, len(witnesses) if args.quorum is None else args.quorum)


def _add_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--witness", action="append", default=[], help="a trusted witness's vkey (repeat)")
    parser.add_argument("--quorum", type=int, help="how many of the witnesses must have cosigned [default: all]")
    parser.add_argument("--policy", help="a policy file: log, witness and quorum lines (crypto/policy.py)")


def _print_cosigners(confirmed: dict[str, int]) -> None:
    for name, timestamp in sorted(confirmed.items(), key=lambda item: item[1]):
        when = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        print(f"  cosigned by witness {name} at {when}")


def _command_checkpoint(args: argparse.Namespace) -> None:
    policy = _policy(args)
    vkey = args.vkey or (policy.log.vkey if policy.log else None)
    if vkey is None:
        raise CryptoError("give the log's --vkey (from /p/<slug>/audit/key) or a policy with a log line")
    with open(args.file, "rb") as f:
        note = f.read().decode("utf-8", "replace")
    checkpoint, confirmed = check_checkpoint(note, fork.Verifier.from_vkey(vkey), policy)
    print(
        f"OK: checkpoint of {checkpoint.origin} at size {checkpoint.size} signed by the log; "
        f"{len(confirmed)} of {len(policy.witnesses)} policy witnesses cosigned (quorum {policy.quorum})"
    )
    _print_cosigners(confirmed)


def _command_proof(args: argparse.Namespace) -> None:
    with open(args.file, "rb") as f:
        document = loads_strict(f.read())
    confirmed = verify_receipt_proof(document, args.code, _pinned(args), _policy(args))
    head = document["head"]
    kid = key_id(bytes.fromhex(document["public_key"]))
    print(
        f"OK: your signature is leaf {document['index']}, included in the tree head of petition "
        f"{head['petition']} at size {head['size']} (count {head['count']}, time {head['time']}), "
        f"signed by log key {kid}"
    )
    _print_cosigners(confirmed)
    _key_note(args)
    print("  only a full bundle shows it is still counted")


def _read_view(path: str, key: str | None, pinned: bytes | None) -> tuple[fork.View, list[bytes] | None, str]:
    """A checkpoint note (needs --vkey) or a bundle (verified whole; its leaves kept for proofs),
    and the key a fork proof names: the vkey if given, else the bundle's public key in hex."""
    with open(path, "rb") as f:
        raw = f.read()
    if not raw.lstrip().startswith(b"{"):
        if key is None or "+" not in key:
            raise CryptoError(f"{path} is a checkpoint: give the log's --vkey (from its /audit/key)")
        return fork.checkpoint_view(raw.decode("utf-8", "replace"), fork.Verifier.from_vkey(key)), None, key
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if key is not None and "+" in key:
        pinned = fork.Verifier.from_vkey(key).public_key
    report = verify_bundle(lines, None, pinned)
    public_key = bytes.fromhex(loads_strict(lines[0])["public_key"])
    latest = loads_strict(lines[report.heads])  # the last head line
    leaves = lines[1 + report.heads :]
    return fork.head_view(latest, public_key), leaves, key or public_key.hex()


def _command_compare(args: argparse.Namespace) -> None:
    pinned = _pinned(args)
    a, a_leaves, key = _read_view(args.a, args.vkey, pinned)
    b, b_leaves, _ = _read_view(args.b, args.vkey, pinned)
    larger = a_leaves if a.size > b.size else b_leaves
    subtree = None if larger is None else (lambda start, end: root_of(larger[start:end]))
    proof = None
    if args.proof:
        with open(args.proof, "rb") as f:
            proof = [bytes.fromhex(node) for node in loads_strict(f.read())["proof"]]
    try:
        fork.compare(a, b, subtree, proof)
    except Equivocation as exc:
        exc.evidence = fork.dumps(fork.fork_proof(key, a, b, exc.evidence))
        raise
    print(f"OK: consistent: the {a.label} of size {a.size} and the {b.label} of size {b.size} are one log")


def _command_fork(args: argparse.Namespace) -> None:
    with open(args.file, "rb") as f:
        document = loads_strict(f.read())
    print(f"OK: this fork proof holds. {fork.verify_fork_proof(document)}")


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``signing-audit``: 0 verified, 1 a check failed, 2 usage error."""
    parser = argparse.ArgumentParser(prog="signing-audit", description="Verify a Countersign petition log offline.")
    commands = parser.add_subparsers(dest="command", required=True)
    key_help = "the log's public key (64 hex digits, from /audit/key): refuse a file signed with any other"
    verify = commands.add_parser("verify", help="verify a whole bundle")
    verify.add_argument("bundle", help='bundle file (JSON Lines), or "-" for standard input')
    verify.add_argument("--key", help=key_help)
    verify.set_defaults(run=_command_verify)
    receipt = commands.add_parser("receipt", help="verify a bundle and find one signer's receipt in it")
    receipt.add_argument("code", help="the receipt code, as shown when signing")
    receipt.add_argument("bundle", help='bundle file (JSON Lines), or "-" for standard input')
    receipt.add_argument("--key", help=key_help)
    receipt.set_defaults(run=_command_receipt)
    proof = commands.add_parser("proof", help="verify a receipt proof file downloaded from a receipt page")
    proof.add_argument("code", help="your receipt code: the proof must be for your signature")
    proof.add_argument("file", help="the receipt proof JSON file")
    proof.add_argument("--key", help=key_help)
    _add_policy_options(proof)
    proof.set_defaults(run=_command_proof)
    checkpoint = commands.add_parser("checkpoint", help="verify a checkpoint and its witnesses' cosignatures")
    checkpoint.add_argument("file", help="the checkpoint (C2SP signed note, from /p/<slug>/audit/checkpoint)")
    checkpoint.add_argument("--vkey", help="the log's verifier key (from /p/<slug>/audit/key)")
    _add_policy_options(checkpoint)
    checkpoint.set_defaults(run=_command_checkpoint)
    compare = commands.add_parser(
        "compare", help="compare two checkpoints or bundles from different places: consistent, or a fork proof"
    )
    compare.add_argument("a", help="a checkpoint (text) or a bundle (JSON Lines)")
    compare.add_argument("b", help="another checkpoint or bundle of the same log")
    compare.add_argument("--vkey", help="the log's verifier key (from /p/<slug>/audit/key), for checkpoints")
    compare.add_argument("--key", help=key_help)
    compare.add_argument("--proof", help="a consistency proof JSON (/audit/proof/consistency) for two checkpoints")
    compare.set_defaults(run=_command_compare)
    fork_check = commands.add_parser("fork", help="check a fork proof printed by compare or verify")
    fork_check.add_argument("file", help="the fork proof JSON")
    fork_check.set_defaults(run=_command_fork)
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except Equivocation as exc:
        print(f"FAIL: {exc}")
        print("fork proof (statements signed by the log key that cannot both be true; check: signing-audit fork):")
        print(exc.evidence)
        return 1
    except CryptoError as exc:
        print(f"FAIL: {exc}")
        return 1
    except OSError as exc:
        print(f"FAIL: cannot read {exc.filename or 'input'}: {exc.strerror or exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
