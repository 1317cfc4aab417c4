"""Settling the inbox at publish: who counts is decided here, never in a request.

Runs under the log lock, set-based: a few statements whatever the number of
submissions, and no statement that fails on a duplicate (PostgreSQL would log
the failing INSERT with its tags, issue 16). A duplicate is simply not
inserted (INSERT ... ON CONFLICT DO NOTHING against the live-signature unique
indexes) and its receipt is linked to the signature that counts instead.
"""

from peewee import Case, Value, fn

from ..db import database
from ..models import COUNTED, ONLINE, PAPER, WITHDRAWN, Inbox, SealedContact, Signature

# What a settled (or withdrawn) inbox row no longer needs: all but its receipt digest.
FORGOTTEN = {
    "person_tag": None,
    "email_tag": None,
    "display_name": None,
    "district": None,
    "sealed_contact": None,
    "token_hash": None,  # nosec B105 -- clearing a column, not a password
    "token_expires": None,  # nosec B105 -- likewise
}

_SIGNATURE_COLUMNS = [
    Signature.petition,
    Signature.person_tag,
    Signature.email_tag,
    Signature.channel,
    Signature.status,
    Signature.receipt_hash,
    Signature.display_name,
    Signature.display_name_hidden,
    Signature.district,
    Signature.day,
]


# Rows per statement: an IN list of ids, well under every engine's parameter limit.
CHUNK_ROWS = 500


def _waiting(petition_id, boundary):
    return (
        (Inbox.petition == petition_id)
        & (Inbox.ready == True)  # noqa: E712 -- a SQL comparison, not a Python one
        & (Inbox.settled == False)  # noqa: E712
        & (Inbox.id <= boundary)
    )


def boundary_of(petition_id):
    """The last inbox row the next batch may hold: fixed before anything is settled."""
    return Inbox.select(fn.MAX(Inbox.id)).where(Inbox.petition == petition_id).scalar() or 0


def _taken(ids):
    """The rows of ``ids`` still waiting: a withdrawal may have settled one meanwhile."""
    return Inbox.id.in_(ids) & (Inbox.ready == True) & (Inbox.settled == False)  # noqa: E712


def settle(petition_id, boundary, today):
    """Turn ready submissions up to ``boundary`` into signatures, or link them to one.

    The rows to settle are read once, first, and every later statement works
    on exactly those ids. On PostgreSQL each statement sees what committed
    before it began, so a confirmation committing between two statements
    would otherwise be taken by some and not others (a row marked settled as
    a duplicate, yet never inserted: a lost signature). Rows that became
    ready meanwhile wait for the next batch.

    Online first, then paper, each earliest first, so of two submissions by
    one person the earlier counts. A paper row whose written-down email is
    live online is not counted (the unique indexes only see person tags for
    paper); a paper row and an online one with an email tag, by the same
    person, both count until close (publishing.supersede_at_close).
    """
    ids = [
        row_id
        for (row_id,) in Inbox.select(Inbox.id).where(_waiting(petition_id, boundary)).order_by(Inbox.id).tuples()
    ]
    chunks = [ids[start : start + CHUNK_ROWS] for start in range(0, len(ids), CHUNK_ROWS)]
    for channel in (ONLINE, PAPER):
        for chunk in chunks:
            _count(petition_id, chunk, channel, today)
    for chunk in chunks:
        taken = _taken(chunk)
        # "Keep me informed" addresses go in whether or not the submission counted,
        # so the organiser's contact list grows alike for a duplicate.
        SealedContact.insert_from(
            Inbox.select(Inbox.petition, Inbox.sealed_contact).where(taken & Inbox.sealed_contact.is_null(False)),
            [SealedContact.petition, SealedContact.sealed],
        ).execute()
        _link_duplicates(chunk)
        # What remains is either a signature now (its receipt lives there) or paper.
        Inbox.delete().where(taken).execute()


def _count(petition_id, ids, channel, today):
    """Insert a signature for each row of ``ids`` in ``channel`` unless its person or email already counts."""
    live_email = Signature.alias()
    rows = Inbox.select(
        Inbox.petition,
        Inbox.person_tag,
        Case(None, [(Inbox.channel == PAPER, None)], Inbox.email_tag),
        Inbox.channel,
        Value(COUNTED),
        Inbox.receipt_hash,
        Inbox.display_name,
        Value(False),
        Inbox.district,
        Value(today),
    ).where(_taken(ids) & (Inbox.channel == channel))
    if channel == PAPER:
        rows = rows.where(
            Inbox.email_tag.is_null()
            | ~fn.EXISTS(
                live_email.select(live_email.id).where(
                    (live_email.petition == petition_id)
                    & (live_email.email_tag == Inbox.email_tag)
                    & (live_email.status != WITHDRAWN)
                )
            )
        )
    Signature.insert_from(rows.order_by(Inbox.id), _SIGNATURE_COLUMNS).on_conflict_ignore().execute()


_LINK_SQL = """
UPDATE "inbox" SET "settled" = {p}, "signature_id" = (
    SELECT s."id" FROM "signature" AS s
    WHERE s."petition_id" = "inbox"."petition_id" AND s."status" <> {p}
      AND ((inbox."email_tag" IS NOT NULL AND s."email_tag" = "inbox"."email_tag")
        OR ("inbox"."email_tag" IS NULL AND s."email_tag" IS NULL AND s."person_tag" = "inbox"."person_tag"))
    ORDER BY s."id" LIMIT 1),
  "person_tag" = NULL, "email_tag" = NULL, "display_name" = NULL, "district" = NULL,
  "sealed_contact" = NULL, "token_hash" = NULL, "token_expires" = NULL
WHERE "id" IN ({ids}) AND "ready" = {p} AND "settled" = {p}
  AND "channel" = {p} AND "receipt_hash" IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM "signature" AS r WHERE r."receipt_hash" = "inbox"."receipt_hash")
"""


def _link_duplicates(ids):
    """A duplicate keeps only its receipt digest and the signature that counts for that person."""
    mark = database.param
    sql = _LINK_SQL.format(p=mark, ids=", ".join([mark] * len(ids)))
    database.execute_sql(sql, (True, WITHDRAWN, *ids, True, False, ONLINE))


def drop_unconfirmed(petition_id):
    """At close: submissions never confirmed will never count."""
    Inbox.delete().where(
        (Inbox.petition == petition_id) & (Inbox.ready == False) & (Inbox.settled == False)  # noqa: E712
    ).execute()
