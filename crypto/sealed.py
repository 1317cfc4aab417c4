"""Sealed contact: a signer's email address encrypted to the organiser's key.

A signer who opts in gives an email address. The server encrypts it at once
to the organiser's X25519 public key with HPKE (RFC 9180) and stores only the
result, so neither the server nor a stolen database or backup can read it.
The organiser decrypts offline with a private key that is never uploaded.

Cipher suite (RFC 9180 section 7), base mode (``mode_base``, 0x00, section 5.1.1)::

    KEM  0x0020  DHKEM(X25519, HKDF-SHA256)   (section 7.1)
    KDF  0x0001  HKDF-SHA256                  (section 7.2)
    AEAD 0x0003  ChaCha20-Poly1305            (section 7.3)

ChaCha20-Poly1305 rather than AES-128-GCM: the organiser decrypts on whatever
laptop they have, and ChaCha20-Poly1305 is constant-time in plain software,
while AES-GCM is only fast *and* free of cache-timing leaks where the CPU has
AES and carry-less-multiply instructions. It also has a 256-bit key. Nonce
reuse, GCM's usual hazard, cannot arise with either: HPKE derives a fresh key
and nonce from a fresh ephemeral key for every ``seal``.

HPKE itself is ``cryptography.hazmat.primitives.hpke`` (single-shot API:
one message per encapsulation, sequence number 0, empty AEAD associated
data). The context is bound through HPKE's ``info`` instead: it enters the
key schedule (section 5.1), so a sealed value copied to another petition
derives a different key and fails to open.

Sealed layout (``SEALED_OVERHEAD_BYTES`` = 49 bytes more than the plaintext)::

    0x01 (format version, = this suite)
    || enc (32 bytes: the ephemeral X25519 public key, SerializePublicKey, section 7.1.1)
    || ciphertext (len(plaintext) bytes) || Poly1305 tag (16 bytes)

The version byte is not itself authenticated; it only selects the suite. Any
value but 0x01 is refused today. A later version must use another suite or
``info`` so that bytes relabelled from one version to the other fail the tag.
"""

from __future__ import annotations

import re

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hpke, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from crypto.errors import InvalidKey

SEALED_VERSION = b"\x01"
PUBLIC_KEY_BYTES = 32  # RFC 7748 X25519 u-coordinate, Npk = Nenc = 32 (RFC 9180 section 7.1)
ENC_BYTES = 32
TAG_BYTES = 16  # Nt for ChaCha20-Poly1305 (RFC 9180 section 7.3)
SEALED_OVERHEAD_BYTES = len(SEALED_VERSION) + ENC_BYTES + TAG_BYTES  # 49

CONTACT_INFO_PREFIX = b"countersign/contact/v1\x00"

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.CHACHA20_POLY1305)
_PUBLIC_KEY_HEX_RE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)
_HEX_DIGITS_RE = re.compile(r"[0-9a-fA-F]*", re.ASCII)

_OPEN_MESSAGE = (
    "cannot open the sealed contact: it was sealed to a different organiser key or "
    "for a different petition, or it was altered or truncated"
)


def contact_info(slug: str) -> bytes:
    """Return the HPKE ``info`` for a petition's sealed contacts.

    ``b"countersign/contact/v1\\x00" || UTF-8(slug)``. The NUL ends the fixed
    label, and the slug comes last, so no two (label, slug) pairs give the
    same bytes. Requires a non-empty slug (``ValueError``).
    """
    if not slug:
        raise ValueError("petition slug must not be empty")
    return CONTACT_INFO_PREFIX + slug.encode("utf-8")


# --- organiser keys ----------------------------------------------------------


def generate_organiser_key(passphrase: bytes | None = None) -> tuple[bytes, bytes]:
    """Return ``(private key PEM, raw public key)`` for a fresh X25519 key pair.

    The PEM is PKCS #8 (``-----BEGIN PRIVATE KEY-----``), unencrypted when
    ``passphrase`` is None, otherwise encrypted with the library's best
    available scheme (``-----BEGIN ENCRYPTED PRIVATE KEY-----``; PBES2 today).
    The public key is the 32-byte RFC 7748 encoding; its 64-character hex
    form is what the organiser pastes into the web form.
    Requires a non-empty passphrase when one is given (``ValueError``).
    """
    if passphrase is None:
        encryption: serialization.KeySerializationEncryption = serialization.NoEncryption()
    elif not passphrase:
        raise ValueError("passphrase must not be empty; pass None for an unencrypted key")
    else:
        encryption = serialization.BestAvailableEncryption(passphrase)
    key = X25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    return pem, key.public_key().public_bytes_raw()


def load_private_key(pem: bytes, passphrase: bytes | None = None) -> X25519PrivateKey:
    """Return the X25519 private key in the PKCS #8 PEM ``pem``.

    Raises ``InvalidKey`` if the PEM is garbled or truncated, is encrypted and
    no passphrase (or the wrong one) was given, is not encrypted but a
    passphrase was given, or holds a key of another type. The message says
    which, never repeating the key.
    """
    try:
        key = serialization.load_pem_private_key(pem, passphrase)
    except TypeError:
        if passphrase is None:
            raise InvalidKey("the organiser key file is encrypted; give its passphrase") from None
        raise InvalidKey("the organiser key file is not encrypted, but a passphrase was given; give none") from None
    except ValueError:
        if passphrase is not None:
            raise InvalidKey("cannot read the organiser key file: wrong passphrase, or the file is damaged") from None
        raise InvalidKey("cannot read the organiser key file: it is not a PEM private key, or it is damaged") from None
    except UnsupportedAlgorithm:
        raise InvalidKey("cannot read the organiser key file: it uses an unsupported key type") from None
    if not isinstance(key, X25519PrivateKey):
        raise InvalidKey(
            "the organiser key file holds a key of another type; want an X25519 key "
            "(create one with generate_organiser_key)"
        )
    return key


def _public_key_from_raw(public_key_raw: bytes) -> X25519PublicKey:
    if len(public_key_raw) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"organiser public key is {len(public_key_raw)} bytes, want {PUBLIC_KEY_BYTES}")
    key = X25519PublicKey.from_public_bytes(public_key_raw)
    # A low-order point (all zeros, one, and the few others of RFC 7748
    # section 6.1) would make every shared secret all zeros, so anyone could
    # open what is sealed to it. RFC 9180 section 7.1.4 requires refusing
    # that output; a trial exchange with a throwaway key finds every such
    # point, because X25519 clamps scalars to multiples of the cofactor 8.
    try:
        X25519PrivateKey.generate().exchange(key)
    except ValueError:
        raise InvalidKey("organiser public key is a weak (low-order) point; generate a new key") from None
    return key


def parse_public_key(text: str) -> bytes:
    """Return the 32-byte X25519 public key written as 64 hex digits in ``text``.

    Surrounding whitespace is ignored and either case accepted (it is pasted
    by hand). Raises ``InvalidKey`` if ``text`` is not exactly 64 hex digits,
    or is a low-order point that would make sealing worthless.
    """
    stripped = text.strip()
    if not _PUBLIC_KEY_HEX_RE.fullmatch(stripped):
        others = "" if _HEX_DIGITS_RE.fullmatch(stripped) else ", not all of them hex digits"
        raise InvalidKey(
            f"an organiser public key is exactly {2 * PUBLIC_KEY_BYTES} hexadecimal digits (0-9, a-f); "
            f"got {len(stripped)} characters{others}"
        )
    raw = bytes.fromhex(stripped)
    _public_key_from_raw(raw)
    return raw


# --- seal and open -----------------------------------------------------------


def seal(public_key_raw: bytes, plaintext: bytes, info: bytes) -> bytes:
    """Encrypt ``plaintext`` to the organiser's X25519 public key (RFC 9180 SealBase, section 6.1).

    Returns ``0x01 || enc (32) || ciphertext || tag (16)``, i.e.
    ``len(plaintext) + 49`` bytes (layout in the module docstring). ``info``
    binds the result to its context; pass ``contact_info(slug)``. Every call
    uses a fresh ephemeral key, so sealing the same address twice gives
    unrelated bytes.

    Raises ``InvalidKey`` if ``public_key_raw`` is not 32 bytes or is a
    low-order point.
    """
    key = _public_key_from_raw(public_key_raw)
    return SEALED_VERSION + _SUITE.encrypt(plaintext, key, info=info)


def open_sealed(private_key: X25519PrivateKey, sealed: bytes, info: bytes) -> bytes:
    """Return the plaintext inside ``sealed`` (RFC 9180 OpenBase, section 6.1).

    ``info`` must equal the one given to ``seal``. Raises ``InvalidKey`` on
    every failure -- wrong private key, different ``info``, altered or
    truncated bytes, unknown version -- and never returns unauthenticated
    bytes. One error for all causes, as for wrapped petition keys: the AEAD
    cannot tell them apart.
    """
    if len(sealed) < SEALED_OVERHEAD_BYTES or sealed[:1] != SEALED_VERSION:
        raise InvalidKey(_OPEN_MESSAGE)
    try:
        return _SUITE.decrypt(sealed[len(SEALED_VERSION) :], private_key, info=info)
    except (InvalidTag, ValueError):  # ValueError: enc is a low-order point (DH output all zeros)
        raise InvalidKey(_OPEN_MESSAGE) from None
