"""One error hierarchy for everything in ``crypto/``.

Callers catch ``CryptoError`` (or one subclass) and never need to parse a
message. Messages are written for people, and never repeat the input that
caused them: a name, address or receipt must not reach a log or a page by way
of an exception.
"""

from __future__ import annotations

IDENTITY_FIELDS = frozenset({"name", "email", "postcode"})


class CryptoError(Exception):
    """Base class of every error raised on purpose by ``crypto/``."""


class InvalidIdentity(CryptoError):
    """A name, email address or postcode cannot be put in canonical form.

    ``field`` is one of "name", "email", "postcode" so a form can attach the
    message to the right input. The message says what is wrong, never what
    was typed.
    """

    def __init__(self, field: str, message: str) -> None:
        if field not in IDENTITY_FIELDS:
            raise ValueError(f"unknown identity field {field!r}")
        super().__init__(message)
        self.field = field
        self.message = message


class KeyFileError(CryptoError):
    """A key file is missing, unreadable, the wrong size or too permissive.

    The message names the path, the problem and how to fix it.
    """


class InvalidKey(CryptoError):
    """A wrapped petition key could not be unwrapped.

    Deliberately one error for every cause (wrong master key, wrong petition,
    altered or truncated bytes, unknown format version): AES-GCM cannot tell
    them apart, and a finer answer would help nobody but an attacker.
    """


class InvalidReceipt(CryptoError):
    """Text is not a well-formed receipt code."""


class InvalidProof(CryptoError):
    """A Merkle inclusion or consistency proof does not verify."""


class InvalidSignature(CryptoError):
    """A signed tree head's signature does not verify."""


class InvalidBundle(CryptoError):
    """An audit bundle is malformed or inconsistent."""


class InvalidToken(CryptoError):
    """Text is not shaped like a confirmation token (refused before any look-up)."""


class Equivocation(InvalidBundle):
    """Two statements validly signed by one log key that cannot both be true.

    A fork: two heads of one size with different roots, or a later head
    inconsistent with an earlier one. ``evidence`` is a text anyone can check
    with ``signing-audit compare`` (or by hand): both signed statements.
    """

    def __init__(self, message: str, evidence: str = "") -> None:
        super().__init__(message)
        self.evidence = evidence
