"""Key files, per-petition keys and their sub-keys (DESIGN.md section 4).

The master key sits in a file outside the database, so a stolen database
(or backup) holds petition keys only in wrapped form and its tags cannot be
tested against guesses. Everything here is bytes in, bytes out; paths are
passed in by the caller.

Key hierarchy::

    master key (32 bytes, file, mode 0600): only ever HKDF input, never a cipher key
      ├─ HKDF-SHA256 "petition-key-wrap" → wrapping key
      │    └─ wraps, per petition, with AES-256-GCM → petition key (32 bytes)
      │         └─ HKDF-SHA256 → "tags", "confirm", "contact" sub-keys (32 bytes each)
      ├─ HKDF-SHA256 "organiser-totp" → encrypts TOTP secrets at rest
      └─ HKDF-SHA256 "web-session" → signs session cookies
    log key (Ed25519, raw 32-byte private key, file, mode 0600)

One key, one purpose (DESIGN §4): before format 2 the master key itself was
the AES-GCM key *and* the HKDF input for the other keys. Format 1 wrapped
keys are read only by ``rewrap_legacy``, which the schema step run by
``signing init`` applies once to every stored key.
"""

from __future__ import annotations

import os
import re
import secrets
import stat

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from crypto.errors import InvalidKey, KeyFileError

KEY_BYTES = 32
SALT_BYTES = 16
LOG_KEY_BYTES = 32  # RFC 8032 Ed25519 private key (the seed), raw

WRAP_VERSION = b"\x02"  # under the HKDF wrapping key
LEGACY_WRAP_VERSION = b"\x01"  # under the master key itself (before key separation)
WRAP_PURPOSE = "petition-key-wrap"
WRAP_NONCE_BYTES = 12
WRAP_TAG_BYTES = 16
WRAPPED_KEY_BYTES = (
    len(WRAP_VERSION) + WRAP_NONCE_BYTES + KEY_BYTES + WRAP_TAG_BYTES
)  # 61
WRAP_AD_PREFIX = b"countersign/petition-key/v1\x00"

SUBKEY_INFO_PREFIX = b"countersign/v1/"
PURPOSE_TAGS = "tags"
PURPOSE_CONFIRM = "confirm"
PURPOSE_CONTACT = "contact"
_PURPOSE_RE = re.compile(r"[a-z][a-z0-9-]*", re.ASCII)

_INIT_HINT = "run `signing init` to create the keys"


# --- key files --------------------------------------------------------------


def _create_key_file(path: str | os.PathLike[str], data: bytes, what: str) -> None:
    # O_EXCL: never overwrite (losing a master key loses every petition's
    # tags); mode 0600 at creation: the file never exists with looser
    # permissions, not even between open and chmod.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{what} file {os.fspath(path)} already exists; refusing to overwrite it "
            "(move it aside yourself if you really mean to replace it)"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot create {what} file {os.fspath(path)}: {exc.strerror}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        os.unlink(path)  # a half-written key file must not be mistaken for a key
        raise KeyFileError(
            f"cannot write {what} file {os.fspath(path)}: {exc.strerror}"
        ) from None


def _read_key_file(path: str | os.PathLike[str], what: str, size: int) -> bytes:
    name = os.fspath(path)
    try:
        # O_NONBLOCK: a FIFO put where the key should be fails the regular-file
        # check below instead of hanging the open; no effect on regular files.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise KeyFileError(
            f"{what} file {name} does not exist; {_INIT_HINT}, or point to the right file"
        ) from None
    except OSError as exc:
        raise KeyFileError(
            f"cannot open {what} file {name}: {exc.strerror}; check its owner and permissions"
        ) from None
    try:
        # fstat on the open descriptor: the checks apply to the file read.
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeyFileError(f"{what} file {name} is not a regular file")
        if st.st_mode & 0o077:
            raise KeyFileError(
                f"{what} file {name} is readable or writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run `chmod 600 {name}`"
            )
        data = b""
        while len(data) <= size:  # one byte more than wanted, to notice a long file
            chunk = os.read(fd, size + 1 - len(data))
            if not chunk:
                break
            data += chunk
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} file {name}: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) != size:
        got = f"{len(data)} bytes" if len(data) <= size else f"more than {size} bytes"
        raise KeyFileError(
            f"{what} file {name} is {got}, want exactly {size}; it is damaged or not a key file "
            "(restore it from backup)"
        )
    return data


def create_master_key_file(path: str | os.PathLike[str]) -> bytes:
    """Create ``path`` holding 32 fresh random bytes, mode 0600, and return them.

    Raises ``KeyFileError`` if the file exists (never overwritten) or cannot
    be written.
    """
    key = secrets.token_bytes(KEY_BYTES)
    _create_key_file(path, key, "master key")
    return key


def load_master_key(path: str | os.PathLike[str]) -> bytes:
    """Return the 32-byte master key from ``path``.

    Raises ``KeyFileError`` if the file is missing, unreadable, not a regular
    file, not exactly 32 bytes, or has any group/other permission bit set.
    """
    return _read_key_file(path, "master key", KEY_BYTES)


def overwrite_key_file(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` over the existing key file's bytes, in place, and flush it to disk.

    In place rather than by rename, so that on an ordinary (not copy-on-write)
    file system the old key's blocks are overwritten, not merely freed. SSDs
    and copy-on-write file systems may still keep old blocks: README says so.
    """
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        raise KeyFileError(f"cannot open key file {os.fspath(path)}: {exc.strerror}") from None
    try:
        os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        raise KeyFileError(f"cannot write key file {os.fspath(path)}: {exc.strerror}") from None
    finally:
        os.close(fd)


def create_log_key_file(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Create ``path`` holding a fresh Ed25519 private key (raw 32 bytes, RFC 8032), mode 0600.

    Raises ``KeyFileError`` as ``create_master_key_file`` does.
    """
    key = Ed25519PrivateKey.generate()
    _create_key_file(path, key.private_bytes_raw(), "log signing key")
    return key


def log_public_key_bytes(log_key: Ed25519PrivateKey) -> bytes:
    """The raw 32-byte Ed25519 public key of the log key (RFC 8032)."""
    return log_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_log_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    """Return the Ed25519 log signing key from ``path``, with the checks of ``load_master_key``."""
    return Ed25519PrivateKey.from_private_bytes(
        _read_key_file(path, "log signing key", LOG_KEY_BYTES)
    )


# --- petition keys ----------------------------------------------------------


def new_petition_key() -> bytes:
    """Return 32 random bytes from the OS CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def new_salt() -> bytes:
    """Return 16 random bytes: a petition's public Argon2id salt."""
    return secrets.token_bytes(SALT_BYTES)


def _wrap_ad(petition_id: str) -> bytes:
    # Binding the petition id means a wrapped key copied onto another
    # petition's row fails to unwrap instead of silently sharing keys.
    return WRAP_AD_PREFIX + petition_id.encode("utf-8")


def _check_len(value: bytes, want: int, what: str) -> None:
    if len(value) != want:
        raise ValueError(f"{what} is {len(value)} bytes, want {want}")


def wrapping_key(master_key: bytes) -> bytes:
    """The AES-256-GCM key that wraps petition keys: HKDF of the master key, label "petition-key-wrap"."""
    return derive_subkey(master_key, WRAP_PURPOSE)


def wrap_petition_key(
    master_key: bytes, petition_key: bytes, petition_id: str
) -> bytes:
    """Encrypt a petition key under the master key's wrapping key with AES-256-GCM.

    Output (61 bytes)::

        0x02 (format version) || nonce (12 random bytes) || ciphertext (32) || GCM tag (16)

    with associated data ``b"countersign/petition-key/v1\\x00" || UTF-8(petition_id)``.
    A random 96-bit nonce is safe here: one master key wraps one key per
    petition, far below the 2^32 messages NIST SP 800-38D allows.
    Requires 32-byte keys (``ValueError`` otherwise).
    """
    _check_len(master_key, KEY_BYTES, "master key")
    _check_len(petition_key, KEY_BYTES, "petition key")
    nonce = secrets.token_bytes(WRAP_NONCE_BYTES)
    return (
        WRAP_VERSION
        + nonce
        + AESGCM(wrapping_key(master_key)).encrypt(nonce, petition_key, _wrap_ad(petition_id))
    )


def unwrap_petition_key(master_key: bytes, wrapped: bytes, petition_id: str) -> bytes:
    """Return the 32-byte petition key inside ``wrapped`` (format in ``wrap_petition_key``).

    Raises ``InvalidKey`` if the master key is wrong, the petition id differs
    from the one used to wrap, or the bytes were altered, truncated or carry
    an unknown version. Requires a 32-byte master key (``ValueError``).
    """
    _check_len(master_key, KEY_BYTES, "master key")
    return _unwrap(wrapping_key(master_key), WRAP_VERSION, wrapped, petition_id)


def _unwrap(key: bytes, version: bytes, wrapped: bytes, petition_id: str) -> bytes:
    message = (
        "cannot unwrap the petition key: the master key does not match this petition's "
        "wrapped key, or the wrapped key was altered"
    )
    if len(wrapped) != WRAPPED_KEY_BYTES or wrapped[:1] != version:
        raise InvalidKey(message)
    nonce = wrapped[1 : 1 + WRAP_NONCE_BYTES]
    try:
        return AESGCM(key).decrypt(
            nonce, wrapped[1 + WRAP_NONCE_BYTES :], _wrap_ad(petition_id)
        )
    except InvalidTag:
        raise InvalidKey(message) from None


def rewrap_legacy(master_key: bytes, wrapped: bytes, petition_id: str) -> bytes | None:
    """A format 1 wrapped key (under the master key itself) re-wrapped as format 2; None if
    ``wrapped`` is format 2 already. Raises ``InvalidKey`` if it does not unwrap."""
    _check_len(master_key, KEY_BYTES, "master key")
    if wrapped[:1] == WRAP_VERSION:
        unwrap_petition_key(master_key, wrapped, petition_id)  # a wrong master key fails here, not later
        return None
    petition_key = _unwrap(master_key, LEGACY_WRAP_VERSION, wrapped, petition_id)
    return wrap_petition_key(master_key, petition_key, petition_id)


def rewrap(old_master_key: bytes, new_master_key: bytes, wrapped: bytes, petition_id: str) -> bytes:
    """``wrapped`` (format 2 under ``old_master_key``) wrapped afresh under ``new_master_key``."""
    return wrap_petition_key(new_master_key, unwrap_petition_key(old_master_key, wrapped, petition_id), petition_id)


def derive_subkey(petition_key: bytes, purpose: str) -> bytes:
    """Return a 32-byte sub-key: HKDF-SHA256 (RFC 5869), no salt, IKM = petition key,
    info = ``b"countersign/v1/" || ASCII(purpose)``.

    Each purpose ("tags", "confirm", "contact") gets its own key so that no
    output of one use can stand in for another: a MAC computed over a
    confirmation token can never equal, or help forge, an identity tag's MAC
    of the same bytes, and a key can be retired for one purpose without
    touching the others. HKDF with distinct ``info`` gives independent keys
    from one secret. No salt is needed because the petition key is already
    uniformly random (RFC 5869 section 3.1).

    ``purpose`` must match ``[a-z][a-z0-9-]*`` and the key be 32 bytes
    (``ValueError`` otherwise), so a label cannot be silently mangled.
    """
    _check_len(petition_key, KEY_BYTES, "petition key")
    if not _PURPOSE_RE.fullmatch(purpose):
        raise ValueError(
            "sub-key purpose must be lower-case ASCII letters, digits and dashes"
        )
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=None,
        info=SUBKEY_INFO_PREFIX + purpose.encode("ascii"),
    )
    return hkdf.derive(petition_key)
