"""Canonical forms of a signer's name, email address and UK postcode.

Identity tags (``crypto.tags``) are only as good as the canonical forms fed to
them: two ways of writing the same person must give the same string, or one
person could sign twice; two different people must not, or one would be turned
away. These functions decide what "the same" means (DESIGN.md section 6), and
raise ``InvalidIdentity`` for input that cannot be a name, address or postcode.
An error message never contains the input itself.

Nothing here is secret or keyed: an auditor can rerun these on paper forms.
"""

from __future__ import annotations

import re
import unicodedata

from crypto.errors import InvalidIdentity

NAME_MAX_CHARS = 200
EMAIL_MAX_CHARS = 254  # RFC 5321 limit on a forward path, less the angle brackets
POSTCODE_MAX_CHARS = 32  # raw input, spaces included; a postcode is at most 8

DEFAULT_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# googlemail.com delivers to the same mailbox as gmail.com.
_DOMAIN_ALIASES = {"googlemail.com": "gmail.com"}

# Ordinary whitespace that people paste into a name field; any other control
# or format character (newline, zero-width joiner, BOM, bidi override) is
# refused rather than silently dropped, because it can make two visually
# identical names differ.
_NAME_WHITESPACE_CONTROLS = frozenset({"\t"})

# UK postcode, without spaces, upper case (the GOV.UK / BS 7666 pattern).
# Outward code: A9, A99, AA9, AA99, A9A, AA9A, where the first letter is never
# Q V X, the second never I J Z, a third-position letter (A9A) is one of
# ABCDEFGHJKPSTUW and a fourth-position letter (AA9A) one of ABEHMNPRVWXY.
# Inward code: a digit and two letters, never C I K M O V.
# GIR 0AA (the old Girobank) is the one special case kept.
_OUTWARD = (
    r"[A-PR-UWYZ](?:"
    r"[0-9][0-9]?"  # A9, A99
    r"|[A-HK-Y][0-9][0-9]?"  # AA9, AA99
    r"|[0-9][A-HJKPSTUW]"  # A9A
    r"|[A-HK-Y][0-9][ABEHMNPRVWXY]"  # AA9A
    r")"
)
_INWARD = r"[0-9][ABD-HJLNP-UW-Z]{2}"
_POSTCODE_RE = re.compile(rf"(?:{_OUTWARD}{_INWARD}|GIR0AA)", re.ASCII)
_AREA_RE = re.compile(r"[A-Z]+", re.ASCII)


def _is_punctuation_or_symbol(char: str) -> bool:
    return unicodedata.category(char)[0] in ("P", "S")


def _is_control_or_format(char: str) -> bool:
    return unicodedata.category(char) in ("Cc", "Cf")


def canonical_name(raw: str) -> str:
    """Return the canonical form of a person's name.

    Steps: Unicode NFKC (so full-width and compatibility letters match their
    ordinary forms), case-fold, remove punctuation and symbols (categories P*
    and S*), split on whitespace, sort the tokens and join them with one
    space. Sorting makes word order irrelevant, so "Clara Cheung",
    "CHEUNG Clara" and "Cheung, Clara" all give "cheung clara". Han
    characters are unaffected by NFKC and case folding, so 陳大文 stays 陳大文
    (one token, since it has no spaces).

    Punctuation is removed, not turned into a space: "O'Brien" becomes
    "obrien", as it would when someone leaves the apostrophe out.

    Raises ``InvalidIdentity(field="name")`` if the raw text is longer than
    200 characters, contains a control or format character other than space
    or tab, or is empty once normalised.
    """
    if len(raw) > NAME_MAX_CHARS:
        raise InvalidIdentity(
            "name", f"The name is too long (at most {NAME_MAX_CHARS} characters)."
        )
    if any(
        _is_control_or_format(c) and c not in _NAME_WHITESPACE_CONTROLS for c in raw
    ):
        raise InvalidIdentity(
            "name", "The name contains an invisible or control character."
        )
    folded = unicodedata.normalize(
        "NFKC", unicodedata.normalize("NFKC", raw).casefold()
    )
    stripped = "".join(
        " " if c.isspace() else c for c in folded if not _is_punctuation_or_symbol(c)
    )
    tokens = sorted(stripped.split())
    if not tokens:
        raise InvalidIdentity("name", "Please enter a name made of letters.")
    return " ".join(tokens)


def canonical_email(
    raw: str, dotless_domains: frozenset[str] = DEFAULT_DOTLESS_DOMAINS
) -> str:
    """Return the canonical form of an email address.

    Steps: NFKC, trim, lower-case; then require exactly one "@", a non-empty
    local part, a domain with a dot and no empty labels, no whitespace or
    control characters, and at most 254 characters. A "+suffix" in the local
    part is dropped for every domain (``ann+petition@example.org`` is
    ``ann@example.org``). Dots in the local part are dropped only for domains
    in ``dotless_domains``, whose mail servers ignore them
    (``c.lara@gmail.com`` is ``clara@gmail.com``); elsewhere ``c.lara`` and
    ``clara`` may be different people. googlemail.com becomes gmail.com.

    Raises ``InvalidIdentity(field="email")``.
    """
    text = unicodedata.normalize("NFKC", raw).strip().lower()
    if not text:
        raise InvalidIdentity("email", "Please enter an email address.")
    if len(text) > EMAIL_MAX_CHARS:
        raise InvalidIdentity(
            "email",
            f"The email address is too long (at most {EMAIL_MAX_CHARS} characters).",
        )
    if any(c.isspace() or unicodedata.category(c)[0] in ("C", "Z") for c in text):
        raise InvalidIdentity(
            "email",
            "The email address must not contain spaces or invisible characters.",
        )
    if text.count("@") != 1:
        raise InvalidIdentity("email", "The email address must contain exactly one @.")
    local, domain = text.split("@")
    if "." not in domain or any(label == "" for label in domain.split(".")):
        raise InvalidIdentity(
            "email", "The part after the @ must be a domain such as example.org."
        )
    local = local.split("+", 1)[0]
    if (
        domain in dotless_domains
        or _DOMAIN_ALIASES.get(domain, domain) in dotless_domains
    ):
        local = local.replace(".", "")
    domain = _DOMAIN_ALIASES.get(domain, domain)
    if not local:
        raise InvalidIdentity("email", "The part before the @ is missing.")
    return f"{local}@{domain}"


def canonical_postcode(raw: str) -> str:
    """Return a UK postcode upper-cased with all whitespace removed.

    NFKC first, so a postcode typed with full-width characters (common with
    Chinese input methods) is accepted. The result is checked against the
    UK pattern described at ``_POSTCODE_RE``, e.g. "sw1a 1aa" -> "SW1A1AA".

    Raises ``InvalidIdentity(field="postcode")``.
    """
    if len(raw) > POSTCODE_MAX_CHARS:
        raise InvalidIdentity("postcode", "That is too long to be a UK postcode.")
    text = "".join(unicodedata.normalize("NFKC", raw).split())
    if not text:
        raise InvalidIdentity("postcode", "Please enter a postcode.")
    # ASCII check before upper(): str.upper maps some non-ASCII letters
    # (dotless i, sharp s) onto A-Z.
    if not text.isascii() or not _POSTCODE_RE.fullmatch(text.upper()):
        raise InvalidIdentity(
            "postcode", "That is not a valid UK postcode (for example SW1A 1AA)."
        )
    return text.upper()


def _require_canonical_postcode(canonical: str) -> None:
    if not canonical.isascii() or not _POSTCODE_RE.fullmatch(canonical):
        raise InvalidIdentity(
            "postcode",
            "That is not a postcode in canonical form (for example SW1A1AA).",
        )


def postcode_district(canonical: str) -> str:
    """Return the outward code (district) of a canonical postcode.

    The inward code is always the last three characters: "SW1A1AA" -> "SW1A",
    "S12HE" -> "S1". Requires output of ``canonical_postcode``; raises
    ``InvalidIdentity(field="postcode")`` otherwise.
    """
    _require_canonical_postcode(canonical)
    return canonical[:-3]


def postcode_area(canonical: str) -> str:
    """Return the postcode area: the leading letters ("SW1A1AA" -> "SW", "S12HE" -> "S").

    Requires output of ``canonical_postcode``; raises
    ``InvalidIdentity(field="postcode")`` otherwise.
    """
    _require_canonical_postcode(canonical)
    # _require_canonical_postcode guarantees a leading letter, so this matches.
    return _AREA_RE.match(canonical).group()
