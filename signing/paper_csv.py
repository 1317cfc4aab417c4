"""Reading paper signatures typed up as CSV: check every row before adding any.

The file arrives in memory (never written to disk, see signing/web/uploads.py)
and the names in it live only as long as the import: they are canonicalised,
turned into tags by ledger.add_paper_signatures, and dropped. Error messages
name a line and what is wrong with it, never what it says.
"""

import codecs
import csv
import io
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from crypto.errors import InvalidIdentity

from . import ledger

MAX_ROWS = 100_000
REQUIRED_COLUMNS = ("name", "postcode")
OPTIONAL_COLUMNS = ("email",)
# Header names people type in Traditional Chinese, for the same columns.
COLUMN_ALIASES = {"姓名": "name", "郵政編碼": "postcode", "郵編": "postcode", "電郵": "email", "電郵地址": "email"}
# What Excel offers by default on a Chinese Windows is Big5 (CP950): its bytes
# are often valid in other encodings too, so it is never guessed, only named.
NOT_UTF8 = _l(
    "the file is not saved as UTF-8 (Excel on Chinese Windows saves Big5 by default). "
    "In Excel choose File, Save As, and the type “CSV UTF-8 (Comma delimited)”, then upload that file"
)
MISSING = {
    "name": _l("the name is missing"),
    "postcode": _l("the postcode is missing"),
}
TEMPLATE = "\ufeffname,postcode,email\n"
FIELD_PROBLEMS = {
    "name": _l("the name is empty or has no letters"),
    "postcode": _l("the postcode is not a valid UK postcode"),
    "email": _l("the email address is not valid"),
}


@dataclass(frozen=True)
class RowError:
    line: int
    reason: str


class PaperFileError(Exception):
    """The file is rejected whole; ``errors`` lists every bad line."""

    def __init__(self, errors):
        super().__init__(f"{len(errors)} problem(s) in the file")
        self.errors = errors


def decode(data):
    """The file's text: UTF-8, or UTF-16 where its byte-order mark says so; else a message saying what to do."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # the mark makes the encoding certain; it is dropped
        except UnicodeDecodeError:
            raise PaperFileError([RowError(0, NOT_UTF8)]) from None
    try:
        text = data.decode("utf-8-sig")  # a BOM, as Excel writes, is dropped
    except UnicodeDecodeError:
        raise PaperFileError([RowError(0, NOT_UTF8)]) from None
    if "\x00" in text:
        # UTF-16 without its mark, or not text at all.
        raise PaperFileError([RowError(0, NOT_UTF8)])
    return text


def _column(header):
    name = header.strip().lstrip("\ufeff")
    return COLUMN_ALIASES.get(name, name.lower())


def _rows(data):
    text = decode(data)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise PaperFileError([RowError(1, _l("the file is empty: it needs a header row (name,postcode,email)"))])
        columns = [_column(column) for column in header]
        missing = [name for name in REQUIRED_COLUMNS if name not in columns]
        unknown = [name for name in columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
        if missing or unknown or len(set(columns)) != len(columns):
            raise PaperFileError(
                [
                    RowError(
                        1,
                        _l(
                            "the header row must name the columns name, postcode and optionally email "
                            "(or 姓名, 郵政編碼 and 電郵)"
                        ),
                    )
                ]
            )
        for values in reader:
            yield reader.line_num, columns, values
    except csv.Error:
        raise PaperFileError([RowError(reader.line_num, _l("the line is not valid CSV"))]) from None


def parse_paper_csv(services, petition, data):
    """Identities for every row, or PaperFileError listing every bad line."""
    identities, errors = [], []
    for line, columns, values in _rows(data):
        if not any(value.strip() for value in values):
            continue  # blank lines, common at the end of exported files
        if len(values) != len(columns):
            errors.append(
                RowError(line, _l("expected %(want)s columns, found %(got)s", want=len(columns), got=len(values)))
            )
            continue
        fields = dict(zip(columns, values, strict=True))
        wanted = ("name", "postcode") if petition.require_postcode else ("name",)
        missing = [name for name in wanted if not fields[name].strip()]
        if missing:
            errors.append(RowError(line, "; ".join(str(MISSING[name]) for name in missing)))
            continue
        try:
            identities.append(
                ledger.canonical_identity(
                    services,
                    petition,
                    name=fields["name"],
                    postcode=fields["postcode"],
                    email=fields.get("email", ""),
                    email_optional=True,
                )
            )
        except InvalidIdentity as error:
            errors.append(RowError(line, FIELD_PROBLEMS[error.field]))
        except ledger.PostcodeNotEligible as error:
            errors.append(
                RowError(line, _l("the postcode is outside this petition's areas (%(areas)s)", areas=str(error)))
            )
        if len(identities) + len(errors) > MAX_ROWS:
            raise PaperFileError([RowError(line, _l("at most %(rows)s rows per file", rows=MAX_ROWS))])
    if errors:
        raise PaperFileError(errors)
    if not identities:
        raise PaperFileError([RowError(1, _l("the file has a header but no signatures"))])
    return identities
