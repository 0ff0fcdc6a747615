"""Reading an uploaded order file: encoding, delimiter, header, then one row at a time.

``open_source(path)`` learns what the file is and returns its rows as a stream, so a
file of a million rows never sits in memory. What it decides, and why:

* Encoding: a byte order mark wins (UTF-8, UTF-16 LE or BE). Without one the file is
  UTF-8 if every byte of it decodes as UTF-8, else Windows-1252. NUL bytes outside
  UTF-16, or a start that is mostly control characters, mean it is not a text file.
* Delimiter: one of ``,`` ``;`` tab ``|``. ``csv.Sniffer`` proposes one from the first
  lines; the header line has the last word, because a header rarely holds a delimiter
  inside its names while free-text cells often do.
* Header: the first record with a non-blank cell. Its cells are matched to canonical
  columns through ``ALIASES``; when two cells name the same column, the first wins and
  the second is listed as unknown. ``IGNORED_COLUMNS`` are the columns our own result
  files add, skipped so that a fixed rejected-rows file can be uploaded again.
* ``source_row`` counts records the way a spreadsheet counts rows: the header is 1 and
  every record after it adds one, blank ones too, so a value with a line break inside
  quotes does not shift the numbers.
* A record that ``csv`` can't read (a stray or unclosed quote) becomes one row whose
  ``read_error`` says why, holding the first physical line of that record as its only
  cell; reading then resumes at the next physical line. An unclosed quote therefore
  costs one row, not the rest of the file, and every line is accounted for.
* A record with more non-blank cells than the header has a ``read_error``; missing
  cells at the end are empty, as spreadsheet exports often leave them out.
"""

from __future__ import annotations

import codecs
import csv
from collections import deque
from collections.abc import Generator
from pathlib import Path
from typing import TextIO

from group_orders.services.ingest.model import (
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    FileError,
    SourceFile,
    SourceRow,
)

# A single value above this is a read error; csv's own default (128 KiB) is per process
# and a crash rather than a row error when exceeded.
FIELD_SIZE_LIMIT = 1_000_000
# A physical line above this is a read error too, so a file without line breaks can't
# make us hold hundreds of megabytes in one string.
LINE_LIMIT = 1_000_000

DELIMITERS = (",", ";", "\t", "|")
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "vertical bar"}

# Spellings of each canonical column besides its own name. Matching ignores case, spaces
# and punctuation (see ``header_key``), so "Order-ID", "order_id" and "ORDER ID" are one.
ALIASES: dict[str, tuple[str, ...]] = {
    "external_order_id": (
        "Order ID",
        "Order Number",
        "Order No",
        "Order Reference",
        "Reference",
        "Bestellnummer",
    ),
    "order_date": ("Date", "Order Date", "Bestelldatum", "Datum"),
    "recipient_name": (
        "Name",
        "Recipient",
        "Full Name",
        "Customer Name",
        "Ship To Name",
        "Shipping Name",
        "Empfänger",
    ),
    "email": ("E-mail", "Email Address", "E-mail Address", "Mail"),
    "phone": ("Phone Number", "Telephone", "Tel", "Mobile", "Mobile Phone", "Telefon"),
    "address_line1": (
        "Address",
        "Address 1",
        "Address Line 1",
        "Street",
        "Street Address",
        "Shipping Address",
        "Straße",
    ),
    "address_line2": ("Address 2", "Address Line 2", "Apartment", "Suite", "Adresszusatz"),
    "city": ("Town", "Town/City", "Ort", "Stadt"),
    "region": ("State", "Province", "State/Province", "County", "Bundesland"),
    "postal_code": ("Zip", "Zip Code", "Postcode", "Post Code", "PLZ", "Postleitzahl"),
    "country": ("Country Code", "Land"),
    "sku": ("Item", "Item Number", "Product Code", "Article Number", "Artikelnummer"),
    "quantity": ("Qty", "Amount", "Count", "Menge", "Anzahl"),
    "notes": ("Note", "Comment", "Comments", "Remarks", "Bemerkung"),
}

# Columns that our result files add next to the uploaded ones.
IGNORED_COLUMNS: tuple[str, ...] = (
    "source_row",
    "row_status",
    "error_codes",
    "error_fields",
    "messages",
)

_MOSTLY_BINARY = 0.05  # share of control characters above which a file is not text
_SAMPLE_CHARS = 64 * 1024
_SNIFF_CHARS = 8 * 1024  # Sniffer's regexes are slow on long samples with many quotes
_SCAN_BYTES = 1 << 20
_TEXT_CONTROLS = frozenset("\t\n\r\f\v")

NOT_TEXT = "This is not a text file; upload a CSV file."
EMPTY = "The file is empty; upload a CSV file with a header row and one row per order."
NO_ROWS = "The file has a header row but no orders under it."


def header_key(text: str) -> str:
    """The form in which header cells are compared: casefolded letters and digits only."""
    return "".join(character for character in text.casefold() if character.isalnum())


def _build_header_lookup() -> dict[str, str]:
    lookup: dict[str, str] = {}
    for column in CANONICAL_COLUMNS:
        for spelling in (column, *ALIASES.get(column, ())):
            key = header_key(spelling)
            if lookup.setdefault(key, column) != column:
                raise ValueError(f"header spelling {spelling!r} names two columns")
    return lookup


_HEADER_LOOKUP = _build_header_lookup()
_IGNORED_KEYS = frozenset(header_key(column) for column in IGNORED_COLUMNS)


def canonical_column(header_cell: str) -> str | None:
    """The canonical column a header cell names, or None when it names none."""
    return _HEADER_LOOKUP.get(header_key(header_cell))


def open_source(path: Path) -> tuple[SourceFile, Generator[SourceRow, None, None]]:
    """Learn the file's encoding, delimiter and header; return them and its data rows.

    The rows are read lazily. The file stays open until the rows are exhausted or the
    generator is closed (``rows.close()``), which also happens when it is garbage
    collected. Raises ``FileError`` when the file as a whole can't be used: not text,
    empty, no header, required columns missing, or no rows under the header.
    """
    encoding = detect_encoding(path)
    delimiter = detect_delimiter(_sample(path, encoding))
    stream = path.open(encoding=encoding, errors="replace", newline="")
    try:
        parser = _Parser(stream, delimiter)
        source = parser.read_header(encoding)
        rows = parser.rows()
        first = next(rows, None)
    except BaseException:
        stream.close()
        raise
    if first is None:
        raise FileError(NO_ROWS)
    return source, _prepend(first, rows)


def _prepend(
    first: SourceRow, rows: Generator[SourceRow, None, None]
) -> Generator[SourceRow, None, None]:
    try:
        yield first
        yield from rows
    finally:
        rows.close()


def detect_encoding(path: Path) -> str:
    """The Python codec that reads ``path``: from its byte order mark, else by trial.

    The trial reads the whole file in chunks with an incremental UTF-8 decoder: a file
    that is ASCII for a million rows and has one Windows-1252 "é" near the end is
    Windows-1252, and only a full pass can tell.
    """
    with path.open("rb") as stream:
        head = stream.read(4)
        if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            # Python's "utf-16" reads the mark, picks the byte order and drops the mark.
            return "utf-16"
        has_utf8_bom = head.startswith(codecs.BOM_UTF8)
        stream.seek(0)
        decoder = codecs.getincrementaldecoder("utf-8")()
        is_utf8 = True
        while chunk := stream.read(_SCAN_BYTES):
            if b"\x00" in chunk:
                raise FileError(NOT_TEXT)
            if not is_utf8 or (chunk.isascii() and not decoder.getstate()[0]):
                continue
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                is_utf8 = False
        if is_utf8:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                is_utf8 = False
    if has_utf8_bom:
        # The mark is the author's statement; bytes that break it are read as U+FFFD.
        return "utf-8-sig"
    return "utf-8" if is_utf8 else "cp1252"


def _sample(path: Path, encoding: str) -> str:
    """The text from the first non-blank line on, up to ``_SAMPLE_CHARS``.

    Lines made of delimiters and spaces only (",,,,") are skipped too: they say nothing
    about the header and would mislead the delimiter count.
    """
    blank_characters = "".join(DELIMITERS) + " \r\n\f\v\ufeff"
    with path.open(encoding=encoding, errors="replace", newline="") as stream:
        start = stream.read(_SAMPLE_CHARS)
        if not start:
            raise FileError(EMPTY)
        _check_is_text(start)
        stream.seek(0)
        while line := stream.readline(LINE_LIMIT):
            if line.strip(blank_characters):
                return line + stream.read(_SAMPLE_CHARS)
    raise FileError(EMPTY)


def _check_is_text(sample: str) -> None:
    # Control characters, not replacement characters: binary data has plenty of the
    # former, while a text file with a few stray bytes has only the latter.
    controls = sum(
        1
        for character in sample
        if (character < " " and character not in _TEXT_CONTROLS) or character == "\x7f"
    )
    if controls > len(sample) * _MOSTLY_BINARY:
        raise FileError(NOT_TEXT)


def detect_delimiter(sample: str) -> str:
    """The delimiter of a file whose text (from the header line on) starts with ``sample``.

    ``csv.Sniffer`` looks at several lines; its answer is kept when the header line has
    at least as many of that delimiter (outside quotes) as of any other. Otherwise the
    delimiter most frequent in the header line wins, ties in the order of
    ``DELIMITERS``; a header with none of them is one column, read as comma-separated.
    """
    counts = _delimiters_in_first_record(sample)
    best = max(DELIMITERS, key=lambda delimiter: counts[delimiter])
    try:
        sniffed = csv.Sniffer().sniff(sample[:_SNIFF_CHARS], delimiters="".join(DELIMITERS))
    except csv.Error:
        sniffed = None
    if sniffed is not None and sniffed.delimiter in counts:
        if counts[sniffed.delimiter] == counts[best] > 0:
            return str(sniffed.delimiter)
    return best if counts[best] > 0 else ","


def _delimiters_in_first_record(sample: str) -> dict[str, int]:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for character in sample:
        if character == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif character in "\r\n":
            break
        elif character in counts:
            counts[character] += 1
    return counts


class _LineTooLong(Exception):
    """Raised by ``_Lines`` when a physical line exceeds ``LINE_LIMIT``."""

    def __init__(self, start: str) -> None:
        super().__init__(start)
        self.start = start


class _Lines:
    """The physical lines of the text, as ``csv.reader`` pulls them.

    Remembers the lines the current record consumed (``consumed``) and takes lines back
    (``push_back``), which is how reading resumes at the line after a broken record.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        # Lines to read again; a _LineTooLong stands for an over-long line, raised again
        # when its turn comes.
        self._pending: deque[str | _LineTooLong] = deque()
        self.consumed: list[str] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._pending:
            line = self._pending.popleft()
            if isinstance(line, _LineTooLong):
                raise line
        else:
            line = self._stream.readline(LINE_LIMIT + 1)
            if not line:
                raise StopIteration
            if len(line) > LINE_LIMIT and line[-1] not in "\r\n":
                while (rest := self._stream.readline(LINE_LIMIT)) and rest[-1] not in "\r\n":
                    pass
                raise _LineTooLong(line[:200])
        self.consumed.append(line)
        return line

    def push_back(self, lines: list[str | _LineTooLong]) -> None:
        self._pending.extendleft(reversed(lines))


class _Parser:
    def __init__(self, stream: TextIO, delimiter: str) -> None:
        csv.field_size_limit(FIELD_SIZE_LIMIT)
        self._lines = _Lines(stream)
        self._stream = stream
        self._delimiter = delimiter
        # skipinitialspace: hand-edited files write `a, "b, c"`; values are trimmed later.
        self._reader = csv.reader(
            self._lines,
            delimiter=delimiter,
            quotechar='"',
            doublequote=True,
            skipinitialspace=True,
            strict=True,
        )
        self._record = 0
        self._width = 0
        self._positions: tuple[tuple[str, int], ...] = ()
        self._blank_values = dict.fromkeys(CANONICAL_COLUMNS, "")

    def read_header(self, encoding: str) -> SourceFile:
        header = self._first_record()
        columns: dict[str, int] = {}
        unknown: list[str] = []
        for index, cell in enumerate(header):
            key = header_key(cell)
            if not cell.strip() or key in _IGNORED_KEYS:
                continue
            column = _HEADER_LOOKUP.get(key)
            if column is None or column in columns:
                unknown.append(cell)
            else:
                columns[column] = index
        named = [cell.strip() for cell in header if cell.strip()]
        if not columns:
            raise FileError(
                "The first row is not a header: none of its cells names a known column "
                f"(it has: {_listing(named)}). Add a header row with the column names "
                "(see docs/uploading.md) and upload again."
            )
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise FileError(
                f"Required columns are missing: {', '.join(missing)}. The header has: "
                f"{_listing(named)}. Rename the columns (see docs/uploading.md) and "
                "upload again."
            )
        self._record = 1
        self._width = len(header)
        self._positions = tuple(columns.items())
        return SourceFile(
            encoding=encoding,
            delimiter=self._delimiter,
            header=tuple(header),
            columns=columns,
            unknown_columns=tuple(unknown),
        )

    def _first_record(self) -> list[str]:
        while True:
            self._lines.consumed.clear()
            try:
                cells = next(self._reader)
            except StopIteration:
                raise FileError(EMPTY) from None
            except csv.Error as error:
                raise FileError(f"The header row can't be read: {_explain(error)}") from None
            except _LineTooLong:
                raise FileError(
                    f"The first line is longer than {LINE_LIMIT:,} characters; "
                    "this does not look like a CSV file."
                ) from None
            if not _is_blank(cells):
                return cells

    def rows(self) -> Generator[SourceRow, None, None]:
        try:
            while True:
                self._lines.consumed.clear()
                try:
                    cells = next(self._reader)
                except StopIteration:
                    return
                except csv.Error as error:
                    yield self._unreadable(_explain(error))
                    continue
                except _LineTooLong as error:
                    if self._lines.consumed:
                        # The long line ran into a record that began on an earlier line:
                        # that record is reported, and the long line after its lines.
                        yield self._unreadable(
                            f"The row runs into a line longer than {LINE_LIMIT:,} "
                            "characters, most likely because a quote is not closed.",
                            then=error,
                        )
                    else:
                        self._lines.consumed.append(error.start)
                        yield self._unreadable(
                            f"The line is longer than {LINE_LIMIT:,} characters; "
                            "only its start is kept."
                        )
                    continue
                self._record += 1
                if not _is_blank(cells):
                    yield self._row(cells)
        finally:
            self._stream.close()

    def _row(self, cells: list[str]) -> SourceRow:
        count = len(cells)
        values = self._blank_values.copy()
        for column, index in self._positions:
            if index < count:
                values[column] = cells[index]
        read_error = None
        if count > self._width:
            used = count
            while used > self._width and not cells[used - 1].strip():
                used -= 1
            if used > self._width:
                name = DELIMITER_NAMES[self._delimiter]
                read_error = (
                    f"The row has {used} cells, the header has {self._width}. A value "
                    f"that contains the delimiter ({name}) must be in double quotes."
                )
        return SourceRow(
            source_row=self._record, cells=tuple(cells), values=values, read_error=read_error
        )

    def _unreadable(self, reason: str, then: _LineTooLong | None = None) -> SourceRow:
        """The first line of a record csv could not read; the lines after it are retried."""
        consumed = self._lines.consumed
        first = consumed[0] if consumed else ""
        self._lines.push_back([*consumed[1:], *([then] if then else [])])
        self._record += 1
        return SourceRow(
            source_row=self._record,
            cells=(first.rstrip("\r\n"),),
            values=self._blank_values.copy(),
            read_error=reason,
        )


def _is_blank(cells: list[str]) -> bool:
    return not any(cell.strip() for cell in cells)


def _listing(cells: list[str], limit: int = 30) -> str:
    if not cells:
        return "no names"
    shown = ", ".join(cells[:limit])
    return shown + (f", and {len(cells) - limit} more" if len(cells) > limit else "")


def _explain(error: csv.Error) -> str:
    # csv.Error carries no structured reason; the wording below is matched loosely and
    # any other message is passed on as it is.
    text = str(error)
    if "unexpected end of data" in text:
        return (
            "A quoted value is not closed: the quote that opens it has no closing quote. "
            'Close the quote; a quote inside a value must be doubled ("").'
        )
    if "expected after" in text:
        return (
            "A quoted value is followed by more text before the next delimiter. Put the "
            'whole value in quotes; a quote inside a value must be doubled ("").'
        )
    if "field larger than field limit" in text:
        return (
            f"A value is longer than {FIELD_SIZE_LIMIT:,} characters, most likely "
            "because a quote is not closed."
        )
    return f"The row can't be read ({text})."


__all__ = [
    "ALIASES",
    "DELIMITERS",
    "FIELD_SIZE_LIMIT",
    "IGNORED_COLUMNS",
    "LINE_LIMIT",
    "canonical_column",
    "detect_delimiter",
    "detect_encoding",
    "header_key",
    "open_source",
]
