"""Key files, wrapping of petition keys, and HKDF sub-keys."""

import os
import stat

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from crypto.errors import CryptoError, InvalidKey, KeyFileError
from crypto.keys import (
    KEY_BYTES,
    WRAPPED_KEY_BYTES,
    create_log_key_file,
    create_master_key_file,
    derive_subkey,
    load_log_key,
    load_master_key,
    new_petition_key,
    new_salt,
    rewrap_legacy,
    unwrap_petition_key,
    wrap_petition_key,
    wrapping_key,
)

MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))
PETITION_KEY = b"\xaa" * 32

# --- master key file --------------------------------------------------------


def test_master_key_file_created_0600_and_loads(tmp_path):
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    assert len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key
    assert load_master_key(path) == key
    assert load_master_key(str(path)) == key


def test_master_key_file_mode_never_looser_than_0600_even_with_permissive_umask(
    tmp_path,
):
    old = os.umask(0)
    try:
        path = tmp_path / "master.key"
        create_master_key_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_two_master_keys_differ(tmp_path):
    assert create_master_key_file(tmp_path / "a") != create_master_key_file(
        tmp_path / "b"
    )


def test_master_key_file_never_overwritten(tmp_path):
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    with pytest.raises(KeyFileError, match="already exists"):
        create_master_key_file(path)
    assert path.read_bytes() == key


def test_master_key_file_in_missing_directory(tmp_path):
    with pytest.raises(KeyFileError, match="cannot create"):
        create_master_key_file(tmp_path / "nope" / "master.key")


def test_missing_master_key_file_says_how_to_fix(tmp_path):
    path = tmp_path / "master.key"
    with pytest.raises(KeyFileError) as info:
        load_master_key(path)
    message = str(info.value)
    assert str(path) in message
    assert "does not exist" in message
    assert "signing init" in message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_permissive_master_key_file_refused(tmp_path, mode):
    path = tmp_path / "master.key"
    create_master_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeyFileError) as info:
        load_master_key(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert "chmod 600" in message


def test_owner_read_only_master_key_file_accepted(tmp_path):
    path = tmp_path / "master.key"
    key = create_master_key_file(path)
    path.chmod(0o400)
    assert load_master_key(path) == key


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_size_master_key_file_refused(tmp_path, size):
    path = tmp_path / "master.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"k" * size)
    os.close(fd)
    with pytest.raises(KeyFileError) as info:
        load_master_key(path)
    assert str(path) in str(info.value)
    assert "want exactly 32" in str(info.value)


def test_directory_is_not_a_key_file(tmp_path):
    path = tmp_path / "keydir"
    path.mkdir(mode=0o700)
    with pytest.raises(KeyFileError):
        load_master_key(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_master_key_file(tmp_path):
    path = tmp_path / "master.key"
    create_master_key_file(path)
    path.chmod(0o000)
    try:
        with pytest.raises(KeyFileError, match="cannot open"):
            load_master_key(path)
    finally:
        path.chmod(0o600)


def test_unreadable_master_key_file_simulated(tmp_path, monkeypatch):
    """The same, for a root test run: permission is refused by a fake os.open."""
    path = tmp_path / "master.key"
    create_master_key_file(path)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(KeyFileError) as info:
        load_master_key(path)
    assert str(path) in str(info.value)
    assert "Permission denied" in str(info.value)


def test_fifo_is_not_a_key_file(tmp_path):
    path = tmp_path / "master.key"
    os.mkfifo(path, 0o600)
    with pytest.raises(KeyFileError, match="not a regular file"):
        load_master_key(path)


def test_key_file_error_is_a_crypto_error():
    assert issubclass(KeyFileError, CryptoError)


# --- log key file -----------------------------------------------------------


def test_log_key_file_round_trip(tmp_path):
    path = tmp_path / "log.key"
    key = create_log_key_file(path)
    assert isinstance(key, Ed25519PrivateKey)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == key.private_bytes_raw()
    loaded = load_log_key(path)
    assert loaded.public_key().public_bytes_raw() == key.public_key().public_bytes_raw()
    loaded.public_key().verify(key.sign(b"tree head"), b"tree head")


def test_log_key_file_checks(tmp_path):
    path = tmp_path / "log.key"
    create_log_key_file(path)
    with pytest.raises(KeyFileError, match="already exists"):
        create_log_key_file(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="chmod 600"):
        load_log_key(path)
    with pytest.raises(KeyFileError, match="does not exist"):
        load_log_key(tmp_path / "missing.key")


# --- petition keys and wrapping ---------------------------------------------


def test_new_keys_and_salts():
    assert len(new_petition_key()) == 32
    assert new_petition_key() != new_petition_key()
    assert len(new_salt()) == 16
    assert new_salt() != new_salt()


def test_wrap_round_trip():
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    assert len(wrapped) == WRAPPED_KEY_BYTES == 61
    assert wrapped[0] == 2
    assert PETITION_KEY not in wrapped
    assert unwrap_petition_key(MASTER, wrapped, "petition-1") == PETITION_KEY


def test_wrap_uses_fresh_nonce():
    assert wrap_petition_key(MASTER, PETITION_KEY, "p") != wrap_petition_key(
        MASTER, PETITION_KEY, "p"
    )


def test_unwrap_with_wrong_master_key():
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    with pytest.raises(InvalidKey, match="master key does not match"):
        unwrap_petition_key(OTHER_MASTER, wrapped, "petition-1")


def test_unwrap_with_wrong_petition_id():
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    with pytest.raises(InvalidKey):
        unwrap_petition_key(MASTER, wrapped, "petition-2")


def test_unwrap_refuses_every_single_flipped_bit():
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    for bit in range(len(wrapped) * 8):
        tampered = bytearray(wrapped)
        tampered[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(InvalidKey):
            unwrap_petition_key(MASTER, bytes(tampered), "petition-1")


@pytest.mark.parametrize("cut", [0, 1, 13, 45, 60])
def test_unwrap_refuses_truncated(cut):
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    with pytest.raises(InvalidKey):
        unwrap_petition_key(MASTER, wrapped[:cut], "petition-1")


def test_unwrap_refuses_extended_and_unknown_version():
    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    with pytest.raises(InvalidKey):
        unwrap_petition_key(MASTER, wrapped + b"\x00", "petition-1")
    with pytest.raises(InvalidKey):
        unwrap_petition_key(MASTER, b"\x03" + wrapped[1:], "petition-1")


def test_wrapping_key_is_not_the_master_key():
    # DESIGN §4: the master key is only HKDF input; AES-GCM under it alone must fail.
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    wrapped = wrap_petition_key(MASTER, PETITION_KEY, "petition-1")
    others = (MASTER, derive_subkey(MASTER, "organiser-totp"), derive_subkey(MASTER, "web-session"))
    assert wrapping_key(MASTER) not in others
    with pytest.raises(InvalidTag):
        AESGCM(MASTER).decrypt(wrapped[1:13], wrapped[13:], b"countersign/petition-key/v1\x00petition-1")
    assert AESGCM(wrapping_key(MASTER)).decrypt(
        wrapped[1:13], wrapped[13:], b"countersign/petition-key/v1\x00petition-1"
    ) == PETITION_KEY


def _legacy_wrap(master, petition_key, petition_id):
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = bytes(12)
    ad = b"countersign/petition-key/v1\x00" + petition_id.encode()
    return b"\x01" + nonce + AESGCM(master).encrypt(nonce, petition_key, ad)


def test_legacy_wrapped_key_rewrapped_once_and_only_by_rewrap():
    legacy = _legacy_wrap(MASTER, PETITION_KEY, "petition-1")
    with pytest.raises(InvalidKey):
        unwrap_petition_key(MASTER, legacy, "petition-1")
    rewrapped = rewrap_legacy(MASTER, legacy, "petition-1")
    assert rewrapped[0] == 2 and unwrap_petition_key(MASTER, rewrapped, "petition-1") == PETITION_KEY
    assert rewrap_legacy(MASTER, rewrapped, "petition-1") is None
    with pytest.raises(InvalidKey):
        rewrap_legacy(OTHER_MASTER, legacy, "petition-1")
    with pytest.raises(InvalidKey):
        rewrap_legacy(OTHER_MASTER, rewrapped, "petition-1")


@pytest.mark.parametrize("bad", [b"", b"\x00" * 16, b"\x00" * 33])
def test_wrap_requires_32_byte_keys(bad):
    with pytest.raises(ValueError):
        wrap_petition_key(bad, PETITION_KEY, "p")
    with pytest.raises(ValueError):
        wrap_petition_key(MASTER, bad, "p")
    with pytest.raises(ValueError):
        unwrap_petition_key(bad, b"\x01" * 61, "p")


# --- sub-keys ---------------------------------------------------------------


def test_subkeys_deterministic_and_distinct_by_purpose():
    keys = {
        purpose: derive_subkey(PETITION_KEY, purpose)
        for purpose in ("tags", "confirm", "contact")
    }
    assert all(len(k) == 32 for k in keys.values())
    assert len(set(keys.values())) == 3
    assert PETITION_KEY not in keys.values()
    assert derive_subkey(PETITION_KEY, "tags") == keys["tags"]


def test_subkeys_distinct_by_petition():
    assert derive_subkey(PETITION_KEY, "tags") != derive_subkey(b"\xbb" * 32, "tags")


def test_subkey_matches_documented_hkdf():
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"countersign/v1/tags"
    ).derive(PETITION_KEY)
    assert derive_subkey(PETITION_KEY, "tags") == expected


def test_subkey_matches_rfc5869_shape():
    """RFC 5869 A.3 (SHA-256, zero-length salt and info) pins the HKDF we compose."""
    okm = HKDF(algorithm=hashes.SHA256(), length=42, salt=None, info=b"").derive(
        b"\x0b" * 22
    )
    assert okm.hex() == (
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8"
    )


@pytest.mark.parametrize("purpose", ["", "Tags", "tags/x", "tags\x00", "ta gs", "標籤"])
def test_subkey_purpose_checked(purpose):
    with pytest.raises(ValueError):
        derive_subkey(PETITION_KEY, purpose)
