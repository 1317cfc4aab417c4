"""The domain: every rule about petitions and signatures (DESIGN §6–§8).

Blueprints and the CLI parse their input and call one function here; nothing
else decides whether a signature counts, and nothing else queries the
models. No module in this package imports Flask.

One module per topic:

- ``services``: what every call is given (keys, settings, clock, mailer);
- ``errors``: every reason a request is refused, one class each;
- ``petitions``: creation, look-up, lifecycle (open, close, dates);
- ``identities``: canonical forms, eligibility and tags of what a signer typed;
- ``online``, ``confirmation``: the signer's path, with or without email;
- ``receipts``: checking and withdrawing one's own signature;
- ``paper``: signatures an organiser adds;
- ``names``: public display names and their moderation;
- ``publishing``, ``logstore``: batches, the Merkle log and its signed heads;
- ``totals``, ``certificates``: published figures; ``shredding``: the end;
- ``accounts``, ``contacts``, ``throttle``: organisers, sealed contacts, Argon2id slots;
- ``keycheck``: whether the master key opens the petitions' keys.
"""

from ..models import CLOSED, DRAFT, OPEN, SHREDDED  # statuses callers compare against
from .certificates import Certificate, certificate
from .confirmation import confirm_signature, expire_pending, pending_signature
from .errors import (
    AccountError,
    ConcurrentImport,
    ExpiredToken,
    InvalidContact,
    InvalidDisplayName,
    InvalidPetition,
    LedgerError,
    LoginFailed,
    MailError,
    MalformedToken,
    OrganiserExists,
    PetitionNotClosed,
    PetitionNotDraft,
    PetitionNotOpen,
    PolicyFixed,
    PostcodeNotEligible,
    ReceiptCannotWithdraw,
    ShredIncomplete,
    SlugTaken,
    TagsBusy,
    TwoFactorRefused,
    UnknownReceipt,
    UnknownToken,
    WeakPassword,
)
from .identities import (
    Identity,
    canonical_identity,
    compute_tags,
    compute_tags_in_parallel,
    deliverable_address,
    eligible_postcode,
)
from .keycheck import petitions_the_master_key_cannot_open
from .masterkey import rewrap_stored_keys
from .names import DISPLAY_NAME_MAX_CHARS, clean_display_name, display_names, hide_display_name
from .online import sign_online
from .paper import PaperResult, add_paper_signatures
from .petitions import (
    POLICY_FIELDS,
    SLUG_RE,
    apply_all_schedules,
    apply_schedule,
    close_petition,
    create_petition,
    current_count,
    largest_argon2_memory_kib,
    listed_petitions,
    open_petition,
    petition_by_id,
    petition_by_slug,
    public_petition,
    published_petitions,
    require_open,
    update_petition,
)
from .publishing import in_latest_head, maybe_publish, publish, publish_if_due
from .receipt_flash import RECEIPT_FLASH_SECONDS
from .receipt_flash import sweep_expired as sweep_expired_receipts
from .receipts import ReceiptStatus, find_signature, receipt_proof_document, receipt_status, withdraw
from .services import Services, utcnow
from .shredding import WAIT_SECONDS as SHRED_WAIT_SECONDS
from .shredding import shred
