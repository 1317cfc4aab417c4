"""Tables (DESIGN §5 and §7).

What is deliberately absent: no name, email, full postcode, IP address, user
agent or exact time of any signature. Identity exists here only as Argon2id
tags under a key kept outside the database. Rules that must hold even under a
bug are unique indexes, not code.
"""

import json

from peewee import (
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    Model,
    SmallIntegerField,
    TextField,
)

from crypto.tags import Argon2Params

from .db import database

DRAFT, OPEN, CLOSED, SHREDDED = "draft", "open", "closed", "shredded"
PENDING, COUNTED, WITHDRAWN = "pending", "counted", "withdrawn"
ONLINE, PAPER = "online", "paper"


class BaseModel(Model):
    class Meta:
        database = database
        legacy_table_names = False


class Organiser(BaseModel):
    """An organiser's own account; organisers are not signers and are not anonymous."""

    email = CharField(max_length=254, unique=True)
    password_hash = CharField(max_length=200)
    is_operator = BooleanField(default=False)
    failed_logins = IntegerField(default=0)
    locked_until = DateTimeField(null=True)
    # Base32 TOTP secret when two-factor is on; beside it, as JSON, the SHA-256
    # digests of the unused recovery codes and the last TOTP step accepted
    # (crypto/twofactor.py).
    totp_secret = CharField(max_length=64, null=True)
    recovery_codes = TextField(null=True)
    # A secret offered at enrolment, sealed like totp_secret, kept here (never
    # sent back by the client) until a code from it turns two-factor on.
    totp_pending = CharField(max_length=64, null=True)
    # Wrong codes after a right password lock the second factor on their own:
    # a stranger's wrong passwords (failed_logins) never lock out password + code.
    failed_codes = IntegerField(default=0)
    codes_locked_until = DateTimeField(null=True)
    # Bumped at password change or "log out everywhere"; sessions carry it.
    session_epoch = IntegerField(default=0)


class Petition(BaseModel):
    slug = CharField(max_length=64, unique=True)
    organiser = ForeignKeyField(Organiser, null=True, backref="petitions", on_delete="RESTRICT")
    title = CharField(max_length=200)
    body = TextField()
    eligibility = TextField(default="")
    # The same three in Traditional Chinese, optional: shown to readers whose
    # language is zh_Hant when not empty (signing/web/i18n.py, localised).
    title_zh = CharField(max_length=200, default="")
    body_zh = TextField(default="")
    eligibility_zh = TextField(default="")
    status = CharField(max_length=16, default=DRAFT)
    opens_on = DateField(null=True)
    closes_on = DateField(null=True)
    # When it actually stopped taking signatures (UTC, naive): early by the
    # organiser, or the end of closes_on. NULL while open, and for petitions
    # closed before this was recorded.
    closed_at = DateTimeField(null=True)
    require_email = BooleanField(default=True)
    # For signers at risk: only with email, the one way signing stays unprovable
    # to someone who knows a signer's name and postcode (THREAT_MODEL.md R1).
    at_risk = BooleanField(default=False)
    require_postcode = BooleanField(default=True)
    # Space-separated postcode areas ("S DN"); empty means anywhere.
    allowed_areas = CharField(max_length=200, default="")
    display_names_allowed = BooleanField(default=True)
    # Signature counts that matter (e.g. "1000 2500" for a response and a debate).
    thresholds = CharField(max_length=200, default="")
    # X25519 public key for sealed "keep me informed" contacts; NULL = not offered.
    contact_public_key = BlobField(null=True)
    salt = BlobField()
    # AES-GCM under the master key; NULL once shredded.
    wrapped_key = BlobField(null=True)
    key_version = SmallIntegerField(default=1)
    argon2_params = TextField()

    @property
    def argon2(self):
        return Argon2Params.from_dict(json.loads(self.argon2_params))

    @property
    def allowed_area_list(self):
        return self.allowed_areas.split()

    @property
    def threshold_list(self):
        """The organiser's targets as numbers, smallest first."""
        return sorted(int(part) for part in self.thresholds.split() if part.isdigit())

    @property
    def accepts_signatures(self):
        return self.status == OPEN and self.wrapped_key is not None


class Signature(BaseModel):
    # Every index below starts with petition, so no index of its own (which
    # SQLite's planner would otherwise pick over the better composite ones).
    petition = ForeignKeyField(Petition, backref="signatures", on_delete="RESTRICT", index=False)
    person_tag = BlobField()
    email_tag = BlobField(null=True)
    channel = CharField(max_length=8, default=ONLINE)
    status = CharField(max_length=12, default=COUNTED)
    withdraw_reason = CharField(max_length=12, null=True)
    receipt_hash = BlobField(null=True, unique=True)
    display_name = CharField(max_length=80, null=True)
    display_name_hidden = BooleanField(default=False)
    moderated_on = DateField(null=True)
    # Outward code only ("S1"), for totals; never the full postcode.
    district = CharField(max_length=8, null=True)
    day = DateField()
    # Position in the public log once appended; the withdrawal's too.
    leaf_index = BigIntegerField(null=True)
    withdrawal_index = BigIntegerField(null=True)
    # While pending (DESIGN §6): SHA-256 of the mailed confirmation token, never
    # the token; when the link stops working; when the last mail went (resend
    # limit). All three are cleared when the signature is confirmed. A counted
    # one keeps only when an "already signed" mail last went about it, and only
    # until `signing publish` or `signing expire` runs after the resend limit.
    token_hash = BlobField(null=True, unique=True)
    token_expires = DateTimeField(null=True)
    token_sent_at = DateTimeField(null=True)
    # A sealed "keep me informed" address waiting for confirmation; moved to
    # SealedContact (unlinked) when the signature is confirmed.
    sealed_contact = BlobField(null=True)


# One live (not withdrawn) signature per email tag in a petition, and one per
# person tag among signatures that carry no email tag (paper, or petitions
# that collect no email). Enforced by the database even if ledger has a bug.
# Indexes are named: peewee's derived names would collide and skip some.
Signature.add_index(
    Signature.index(Signature.petition, Signature.email_tag, unique=True, name="signature_live_email").where(
        (Signature.status != WITHDRAWN) & Signature.email_tag.is_null(False)
    )
)
Signature.add_index(
    Signature.index(Signature.petition, Signature.person_tag, unique=True, name="signature_live_person").where(
        (Signature.status != WITHDRAWN) & Signature.email_tag.is_null(True)
    )
)
Signature.add_index(Signature.index(Signature.petition, Signature.person_tag, name="signature_person"))
# What the next batch must append, found without scanning the log.
Signature.add_index(
    Signature.index(Signature.petition, Signature.status, name="signature_unlogged").where(
        Signature.leaf_index.is_null(True)
    )
)
Signature.add_index(
    Signature.index(Signature.petition, Signature.status, name="signature_logged_live").where(
        Signature.leaf_index.is_null(False) & Signature.withdrawal_index.is_null(True)
    )
)
# Public display names, by log position (assigned at publish, shuffled).
Signature.add_index(
    Signature.index(Signature.petition, Signature.leaf_index, name="signature_display_names").where(
        Signature.display_name.is_null(False) & (Signature.status == COUNTED)
    )
)


class Leaf(BaseModel):
    """A log entry, stored verbatim: its bytes are what is hashed."""

    petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
    index = BigIntegerField()
    data = BlobField()

    class Meta:
        indexes = ((("petition", "index"), True),)


class Node(BaseModel):
    """Hash of a complete subtree: leaves [index·2^level, (index+1)·2^level)."""

    petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
    level = SmallIntegerField()
    index = BigIntegerField()
    hash = BlobField()

    class Meta:
        indexes = ((("petition", "level", "index"), True),)


class TreeHead(BaseModel):
    petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
    size = BigIntegerField()
    root = BlobField()
    count = BigIntegerField()
    time = CharField(max_length=20)
    signature = BlobField()
    key_id = CharField(max_length=16)
    # When the batch was appended; decides when the next one may be.
    published_at = DateTimeField()

    class Meta:
        indexes = ((("petition", "size"), True),)


class SealedContact(BaseModel):
    """A signer's "keep me informed" address, sealed (HPKE) to the organiser's key.

    Deliberately not linked to any signature; the server cannot open it.
    """

    petition = ForeignKeyField(Petition, on_delete="RESTRICT")
    sealed = BlobField()


class ReceiptFlash(BaseModel):
    """A receipt code waiting to be shown after a redirect (signing/receipt_flash.py).

    Sealed under a key that only the signer's cookie holds, and deleted after
    minutes: the database alone can never read the code.
    """

    handle = CharField(max_length=64, unique=True)
    sealed = BlobField()
    expires_at = DateTimeField(index=True)


class Cosignature(BaseModel):
    """A witness's cosignature/v1 line on one petition's checkpoint (c2sp.org/tlog-cosignature).

    Kept verbatim: the line is what a checkpoint reader verifies. ``witness``
    is the witness's key name, ``timestamp`` the POSIX time it signed at.
    """

    petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
    size = BigIntegerField()
    witness = CharField(max_length=200)
    line = TextField()
    timestamp = BigIntegerField()

    class Meta:
        indexes = ((("petition", "size", "witness"), True),)


class WitnessReport(BaseModel):
    """A witness that refused a checkpoint or could not be reached, for the operator.

    ``status`` is the HTTP status (None: unreachable); ``message`` a short
    explanation. Rows stay until the operator has seen them (``signing witnesses``).
    """

    petition = ForeignKeyField(Petition, on_delete="RESTRICT")
    size = BigIntegerField()
    witness = CharField(max_length=200)
    status = IntegerField(null=True)
    message = CharField(max_length=300)
    at = DateTimeField()


class Inbox(BaseModel):
    """Every submission, online or on paper, waiting to be settled at the next batch.

    A request only ever inserts here (and into Outbox): whether the person
    already signed is decided at publish, under the log lock (ledger/settlement.py),
    so no request does different work for a signer who exists (THREAT_MODEL.md).
    After settlement only ``receipt_hash`` and ``signature`` remain, so a receipt
    shown for a duplicate still leads to the signature that counts.
    """

    petition = ForeignKeyField(Petition, on_delete="RESTRICT", index=False)
    channel = CharField(max_length=8, default=ONLINE)
    person_tag = BlobField(null=True)
    email_tag = BlobField(null=True)
    receipt_hash = BlobField(null=True, unique=True)
    display_name = CharField(max_length=80, null=True)
    district = CharField(max_length=8, null=True)
    sealed_contact = BlobField(null=True)
    # Email petitions: SHA-256 of this submission's own token; each submission
    # has its own, so a later one never replaces what an earlier one holds.
    token_hash = BlobField(null=True, unique=True)
    token_expires = DateTimeField(null=True)
    # Ready to settle: at once without email, once confirmed with it.
    ready = BooleanField(default=False)
    settled = BooleanField(default=False)
    signature = ForeignKeyField(Signature, null=True, on_delete="CASCADE", index=False)


Inbox.add_index(Inbox.index(Inbox.petition, Inbox.ready, Inbox.settled, name="inbox_waiting"))


class Outbox(BaseModel):
    """Mail to send, off the request path (signing/outbox.py).

    ``sealed`` holds the recipient and the link, AES-GCM under a key derived
    from the master key, and is deleted the moment the message went; the row
    then keeps only when mail last went to the email tag (the resend limit).
    """

    petition = ForeignKeyField(Petition, on_delete="CASCADE", index=False)
    email_tag = BlobField()
    inbox = ForeignKeyField(Inbox, null=True, on_delete="SET NULL", index=False)
    sealed = BlobField(null=True)
    attempts = IntegerField(default=0)
    not_before = DateTimeField()
    lease_until = DateTimeField(null=True)
    sent_at = DateTimeField(null=True)
    # What went ("confirm" or "already_signed"): each kind has its own resend limit.
    kind = CharField(max_length=16, null=True)


Outbox.add_index(Outbox.index(Outbox.not_before, name="outbox_due").where(Outbox.sealed.is_null(False)))
Outbox.add_index(Outbox.index(Outbox.petition, Outbox.email_tag, name="outbox_recipient"))


class SchemaVersion(BaseModel):
    version = IntegerField()


SCHEMA_VERSION = 8

ALL_MODELS = [
    Petition,
    Organiser,
    Signature,
    Leaf,
    Node,
    TreeHead,
    SealedContact,
    ReceiptFlash,
    Cosignature,
    WitnessReport,
    Inbox,
    Outbox,
    SchemaVersion,
]
