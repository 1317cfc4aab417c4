"""Every reason the ledger refuses a request: one class per reason.

Callers show each in their own words (the web maps each class to a page, a
status or a field message; the CLI to one line); none carries what a signer
typed.
"""


class LedgerError(Exception):
    """A request the rules refuse; each subclass is one reason."""


# --- petitions ----------------------------------------------------------------


class InvalidPetition(LedgerError):
    """A petition's settings break a rule (for example its slug)."""


class SlugTaken(LedgerError):
    """Another petition already has this slug."""


class PetitionNotOpen(LedgerError):
    """The petition does not take signatures now (draft, closed or shredded)."""


class PetitionNotDraft(LedgerError):
    """Only a draft can be opened."""


class PolicyFixed(LedgerError):
    """A petition's text and policy are fixed once it has opened."""


class PetitionNotClosed(LedgerError):
    """Only a closed petition can be shredded or certified."""


class ShredIncomplete(LedgerError):
    """The key is gone from the petition, but an old copy could not be proven gone from the
    database's files; the message says where and what to do. Shredding again finishes it."""


# --- signing ------------------------------------------------------------------


class PostcodeNotEligible(LedgerError):
    field = "postcode"


class InvalidDisplayName(LedgerError):
    field = "display_name"


class InvalidContact(LedgerError):
    field = "contact_email"


class TagsBusy(LedgerError):
    """Every tag slot stayed taken for the whole wait; nothing was computed or stored."""


class MailError(LedgerError):
    """A message could not be sent. The message is generic: it never names the recipient."""

    def __init__(self, message="the message could not be sent"):
        super().__init__(message)


class MalformedToken(LedgerError):
    """Not shaped like a confirmation token at all (refused before any look-up)."""


class UnknownToken(LedgerError):
    """No pending signature has this token: never issued, replaced, or already used."""


class ExpiredToken(LedgerError):
    """The confirmation link was valid but is too old."""


class UnknownReceipt(LedgerError):
    """No signature on this petition has that receipt."""


class ReceiptCannotWithdraw(LedgerError):
    """A later submission's receipt on a petition without email: it may check, not withdraw."""


class ConcurrentImport(LedgerError):
    """Another import added the same people at the same moment; nothing was added."""


# --- organiser accounts -------------------------------------------------------


class AccountError(LedgerError):
    """An organiser account cannot be made or changed as asked; the message says why."""


class LoginFailed(AccountError):
    """Wrong address, wrong password, or locked: deliberately indistinguishable."""


class WeakPassword(AccountError):
    pass


class OrganiserExists(AccountError):
    pass


class TwoFactorRefused(AccountError):
    """Wrong password or code (or locked) while turning two-factor on or off."""
