"""C2SP signed notes, checkpoints and Ed25519 cosignatures.

The formats the transparency-log ecosystem (the Go checksum database, Sigsum,
the witness network) shares, so that its tools can check a Countersign log and
a Countersign witness can take part in it:

- c2sp.org/signed-note: a text ending in "\\n", a blank line, then one or more
  signature lines ``— <key name> base64(4-byte key ID || signature)\\n``.
  Key ID = SHA-256(key name || "\\n" || type || public key)[:4]; type 0x01 is
  Ed25519 over the note text. A verifier key ("vkey") is written
  ``<name>+<key ID as 8 hex digits>+base64(type || public key)``.
- c2sp.org/tlog-checkpoint: note text of three lines, origin, tree size in
  decimal, base64 of the RFC 6962 root.
- c2sp.org/tlog-cosignature (Ed25519, type 0x04): a witness signs
  ``cosignature/v1\\ntime <T>\\n`` || the checkpoint text, and the signature is
  base64(key ID || uint64 big-endian T || Ed25519 signature).

Countersign's log key signs checkpoints with type 0x01 under the key name
equal to the origin (``<instance>/<petition>``), as tlog-checkpoint advises. The
same Ed25519 key signs tree heads (crypto.treehead), whose message begins
"countersign/tree-head/v1\\n" followed by "{": never a checkpoint, whose second
line is a decimal number.

Verification returns nothing or raises InvalidSignature / InvalidBundle
(CryptoError), never a boolean to forget to check.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from hashlib import sha256

from cryptography.exceptions import InvalidSignature as _CryptographyInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.errors import InvalidBundle, InvalidSignature
from crypto.merkle import HASH_BYTES

ALG_ED25519 = 0x01
ALG_COSIGNATURE_V1 = 0x04
COSIGNATURE_HEADER = b"cosignature/v1\n"
SIGNATURE_DASH = "\u2014 "  # em dash, space: starts every signature line
MAX_SIGNATURES = 64  # the spec asks verifiers to accept at least 16
MAX_NOTE_BYTES = 64 * 1024
MAX_TIMESTAMP = 2**63 - 1
ED25519_BYTES = 32
ED25519_SIGNATURE_BYTES = 64

_NAME = re.compile(r"[^\s+]+")  # non-empty, no Unicode space, no "+"
_SIZE = re.compile(r"0|[1-9][0-9]{0,19}")


@dataclass(frozen=True)
class NoteSignature:
    """One signature line: who (name, key ID) and the signature bytes after the key ID."""

    name: str
    key_id: bytes  # 4 bytes
    signature: bytes

    def line(self) -> str:
        return f"{SIGNATURE_DASH}{self.name} {base64.b64encode(self.key_id + self.signature).decode('ascii')}\n"


@dataclass(frozen=True)
class Verifier:
    """A trusted key: name, signature type (0x01 note signer, 0x04 cosigner) and raw Ed25519 key."""

    name: str
    alg: int
    public_key: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError("a key name is non-empty, with no spaces and no '+'")
        if self.alg not in (ALG_ED25519, ALG_COSIGNATURE_V1):
            raise ValueError("only Ed25519 note signatures (1) and cosignatures (4) are supported")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != ED25519_BYTES:
            raise ValueError(f"an Ed25519 public key is {ED25519_BYTES} bytes")

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.alg, self.public_key)

    @property
    def vkey(self) -> str:
        """The signed-note verifier key text, ``name+hash+base64(type||key)``."""
        encoded = base64.b64encode(bytes([self.alg]) + self.public_key).decode("ascii")
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    @classmethod
    def from_vkey(cls, text: str) -> Verifier:
        """Parse a vkey; raises InvalidBundle if malformed or if its key ID does not match."""
        parts = text.strip().split("+", 2)  # base64 may hold "+"; names and hashes do not
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{8}", parts[1]):
            raise InvalidBundle("a verifier key reads <name>+<8 hex digits>+<base64 key>")
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error:
            raise InvalidBundle("a verifier key's key is not base64") from None
        if len(raw) != 1 + ED25519_BYTES:
            raise InvalidBundle("a verifier key must hold a type byte and a 32-byte Ed25519 key")
        try:
            verifier = cls(parts[0], raw[0], raw[1:])
        except ValueError as exc:
            raise InvalidBundle(f"verifier key: {exc}") from None
        if verifier.key_id.hex() != parts[1]:
            raise InvalidBundle(f"verifier key {parts[0]}: its key ID does not match its key")
        return verifier


def key_id(name: str, alg: int, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || type || public key)[:4] (signed-note, tlog-cosignature)."""
    return sha256(name.encode("utf-8") + b"\n" + bytes([alg]) + public_key).digest()[:4]


def public_bytes(private_key: Ed25519PrivateKey) -> bytes:
    return private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


# --- notes -------------------------------------------------------------------


def sign_note(private_key: Ed25519PrivateKey, name: str, text: str) -> NoteSignature:
    """An Ed25519 (type 0x01) signature of ``text`` under key name ``name``."""
    verifier = Verifier(name, ALG_ED25519, public_bytes(private_key))
    return NoteSignature(name, verifier.key_id, private_key.sign(text.encode("utf-8")))


def split_note(note: str | bytes) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text (with final newline) and signature lines.

    Checks the form only (UTF-8, no control characters but newline, the blank
    line, well-formed signature lines); raises InvalidBundle.
    """
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise InvalidBundle(f"a note is at most {MAX_NOTE_BYTES} bytes")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBundle("a note must be UTF-8") from None
    if len(note) > MAX_NOTE_BYTES:
        raise InvalidBundle(f"a note is at most {MAX_NOTE_BYTES} bytes")
    if any(c < " " and c != "\n" for c in note):
        raise InvalidBundle("a note holds no control characters other than newline")
    if not note.endswith("\n"):
        raise InvalidBundle("a note ends with a newline")
    # The text is separated from the signatures by the LAST blank line.
    cut = note.rfind("\n\n")
    if cut < 0:
        raise InvalidBundle("a note has a blank line between its text and its signatures")
    text, block = note[: cut + 1], note[cut + 2 :]
    lines = block.split("\n")[:-1]
    if not lines:
        raise InvalidBundle("a note has at least one signature line")
    if len(lines) > MAX_SIGNATURES:
        raise InvalidBundle(f"a note has at most {MAX_SIGNATURES} signatures")
    return text, [parse_signature_line(line) for line in lines]


def parse_signature_line(line: str) -> NoteSignature:
    """Parse ``— <name> <base64>`` (without its newline); raises InvalidBundle."""
    if not line.startswith(SIGNATURE_DASH):
        raise InvalidBundle("a signature line starts with an em dash and a space")
    name, space, encoded = line[len(SIGNATURE_DASH) :].partition(" ")
    if not space or not _NAME.fullmatch(name):
        raise InvalidBundle("a signature line names its key: no spaces, no '+'")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidBundle(f"the signature of {name} is not base64") from None
    if len(raw) < 5:
        raise InvalidBundle(f"the signature of {name} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def open_note(note: str | bytes, verifiers: list[Verifier]) -> tuple[str, list[Verifier]]:
    """Verify a note's type-0x01 signatures against known keys.

    Signatures from unknown keys are ignored; one from a known key that fails
    refuses the whole note; at least one must verify. Returns the text and the
    verifiers whose signatures verified. Raises InvalidSignature or InvalidBundle.
    """
    text, signatures = split_note(note)
    known = {(v.name, v.key_id): v for v in verifiers if v.alg == ALG_ED25519}
    verified = []
    for signature in signatures:
        verifier = known.get((signature.name, signature.key_id))
        if verifier is None:
            continue
        _ed25519_verify(verifier.public_key, signature.signature, text.encode("utf-8"), signature.name)
        if verifier not in verified:
            verified.append(verifier)
    if not verified:
        raise InvalidSignature("the note has no signature from a known key")
    return text, verified


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes, name: str) -> None:
    if len(signature) != ED25519_SIGNATURE_BYTES:
        raise InvalidSignature(f"the signature of {name} is not an Ed25519 signature")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (_CryptographyInvalidSignature, ValueError):
        raise InvalidSignature(f"the signature of {name} does not verify") from None


# --- checkpoints -------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """The three lines of a tlog-checkpoint (no extension lines are written or accepted)."""

    origin: str
    size: int
    root: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.origin, str) or not _NAME.fullmatch(self.origin):
            raise ValueError("an origin is non-empty, with no spaces and no '+'")
        if type(self.size) is not int or self.size < 0:
            raise ValueError("a tree size is a non-negative integer")
        if not isinstance(self.root, bytes) or len(self.root) != HASH_BYTES:
            raise ValueError(f"a root hash is {HASH_BYTES} bytes")

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode('ascii')}\n"

    @classmethod
    def parse(cls, text: str, extensions: bool = False) -> Checkpoint:
        """Parse checkpoint note text; raises InvalidBundle.

        Extension lines are refused unless ``extensions`` (a witness of other
        logs accepts them, and signs them as part of the text): a Countersign
        log writes none, and the spec advises against them.
        """
        lines = text.split("\n")
        if lines[-1] != "" or len(lines) < 4 or (len(lines) != 4 and not extensions):
            raise InvalidBundle("a checkpoint is three lines: origin, tree size, root hash")
        if any(line == "" for line in lines[3:-1]):
            raise InvalidBundle("a checkpoint's extension lines are not empty")
        origin, size, root = lines[:3]
        if not _SIZE.fullmatch(size):
            raise InvalidBundle("a checkpoint's tree size is a decimal number without leading zeros")
        try:
            raw = base64.b64decode(root, validate=True)
        except binascii.Error:
            raise InvalidBundle("a checkpoint's root hash is not base64") from None
        try:
            return cls(origin, int(size), raw)
        except ValueError as exc:
            raise InvalidBundle(f"checkpoint: {exc}") from None


def sign_checkpoint(private_key: Ed25519PrivateKey, checkpoint: Checkpoint) -> str:
    """The signed checkpoint note, signed by the log key under the origin as key name."""
    text = checkpoint.text()
    return text + "\n" + sign_note(private_key, checkpoint.origin, text).line()


def log_verifier(origin: str, public_key: bytes) -> Verifier:
    """The verifier of a Countersign log's checkpoints for one petition."""
    return Verifier(origin, ALG_ED25519, public_key)


def open_checkpoint(note: str | bytes, log: Verifier) -> tuple[Checkpoint, list[NoteSignature]]:
    """Verify a checkpoint's log signature; return it and every signature line.

    The origin must be the log key's name. Cosignatures are returned unchecked
    (see verify_cosignatures). Raises InvalidSignature or InvalidBundle.
    """
    text, _ = open_note(note, [log])
    checkpoint = Checkpoint.parse(text)
    if checkpoint.origin != log.name:
        raise InvalidSignature(f"checkpoint origin {checkpoint.origin!r} is not the log's {log.name!r}")
    return checkpoint, split_note(note)[1]


# --- cosignatures ------------------------------------------------------------


def cosigned_message(text: str, timestamp: int) -> bytes:
    return COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + text.encode("utf-8")


def cosign(private_key: Ed25519PrivateKey, name: str, text: str, timestamp: int) -> NoteSignature:
    """A cosignature/v1 (type 0x04) of checkpoint ``text`` at POSIX time ``timestamp``."""
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise ValueError("a cosignature timestamp is a POSIX time in [0, 2^63-1]")
    verifier = Verifier(name, ALG_COSIGNATURE_V1, public_bytes(private_key))
    signature = private_key.sign(cosigned_message(text, timestamp))
    return NoteSignature(name, verifier.key_id, struct.pack(">Q", timestamp) + signature)


def verify_cosignature(witness: Verifier, text: str, signature: NoteSignature) -> int:
    """Check one cosignature line from ``witness`` on checkpoint ``text``; return its timestamp.

    Raises InvalidSignature (not this witness's, or does not verify).
    """
    if witness.alg != ALG_COSIGNATURE_V1:
        raise InvalidSignature(f"{witness.name} is not a cosigner key")
    if (signature.name, signature.key_id) != (witness.name, witness.key_id):
        raise InvalidSignature(f"the signature is not from witness {witness.name}")
    if len(signature.signature) != 8 + ED25519_SIGNATURE_BYTES:
        raise InvalidSignature(f"the cosignature of {witness.name} is not a timestamped Ed25519 signature")
    (timestamp,) = struct.unpack(">Q", signature.signature[:8])
    if timestamp > MAX_TIMESTAMP:
        raise InvalidSignature(f"the cosignature of {witness.name} has an impossible time")
    _ed25519_verify(witness.public_key, signature.signature[8:], cosigned_message(text, timestamp), witness.name)
    return timestamp


def verify_cosignatures(text: str, signatures: list[NoteSignature], witnesses: list[Verifier]) -> dict[str, int]:
    """The known witnesses whose cosignature on ``text`` verifies: {name: timestamp}.

    Lines from unknown keys are ignored; a line from a known witness that fails
    raises InvalidSignature (as signed-note asks of a known key).
    """
    known = {(w.name, w.key_id): w for w in witnesses if w.alg == ALG_COSIGNATURE_V1}
    confirmed: dict[str, int] = {}
    for signature in signatures:
        witness = known.get((signature.name, signature.key_id))
        if witness is not None:
            confirmed[witness.name] = verify_cosignature(witness, text, signature)
    return confirmed


# --- tlog-witness add-checkpoint requests -----------------------------------------

MAX_PROOF_LINES = 63


@dataclass(frozen=True)
class AddCheckpoint:
    """An add-checkpoint request body (c2sp.org/tlog-witness): old size, consistency proof, note."""

    old_size: int
    proof: list[bytes]
    note: str

    def body(self) -> bytes:
        proof = "".join(base64.b64encode(h).decode("ascii") + "\n" for h in self.proof)
        return f"old {self.old_size}\n{proof}\n{self.note}".encode()

    @classmethod
    def parse(cls, body: bytes) -> AddCheckpoint:
        """Parse a request body; raises InvalidBundle (the witness answers 400)."""
        if len(body) > MAX_NOTE_BYTES:
            raise InvalidBundle(f"a request is at most {MAX_NOTE_BYTES} bytes")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidBundle("the request is not UTF-8") from None
        head, blank, note = text.partition("\n\n")
        if not blank:
            raise InvalidBundle("the request has no blank line before its checkpoint")
        lines = head.split("\n")
        if not lines[0].startswith("old ") or not _SIZE.fullmatch(lines[0][4:]):
            raise InvalidBundle('the request starts with "old <size>"')
        if len(lines) - 1 > MAX_PROOF_LINES:
            raise InvalidBundle(f"a consistency proof has at most {MAX_PROOF_LINES} lines")
        proof = []
        for line in lines[1:]:
            try:
                node = base64.b64decode(line, validate=True)
            except binascii.Error:
                raise InvalidBundle("a consistency proof line is not base64") from None
            if len(node) != HASH_BYTES:
                raise InvalidBundle(f"a consistency proof line is a {HASH_BYTES}-byte hash")
            proof.append(node)
        return cls(int(lines[0][4:]), proof, note)
