"""The three result files of a group order, written one row at a time.

* ``normalized.csv``: every row, accepted and rejected, as normalized values, with its
  ``source_row`` and ``row_status``. UTF-8 without a BOM; it is meant for machines.
* ``accepted.xlsx``: the normalized values of the accepted rows.
* ``rejected.xlsx``: the rejected rows exactly as uploaded, under the uploaded header,
  followed by ``source_row``, ``error_codes``, ``error_fields`` and ``messages``. A person
  fixes the cells, saves the sheet as CSV and uploads it again; the reader is to ignore
  the four extra columns (``REJECTED_EXTRA_COLUMNS``), and this writer drops them from an
  uploaded header that already has them, so the file does not grow on every round.
  The i-th error code belongs to the i-th field; messages are joined with ``"; "``.

Memory stays flat whatever the number of rows: the CSV goes straight to its file and the
workbooks use xlsxwriter's ``constant_memory`` mode, which flushes each row as soon as the
next one starts. Past ``max_sheet_rows`` (header included) a workbook continues on a new
sheet, "Accepted orders (2)" and so on, with the header repeated.

Formula injection. Uploaded text ends up in files that people open in spreadsheets, where
a cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run as
a formula (and a formula can start programs or send data away).

* In the workbooks every text value is written with ``write_string``, so it is a text
  cell whatever it starts with; the workbooks are also created with
  ``strings_to_formulas``, ``strings_to_numbers`` and ``strings_to_urls`` off. Nothing is
  added to the text: a phone such as ``+4930123456`` reads exactly as it is.
* In the CSV a value starting with one of those characters gets a single quote in front
  (``'=1+1``), as OWASP advises for CSV files. A consumer that wants the raw value
  removes a leading ``'`` that is followed by one of the six characters.
  One exception: a value that is a whole E.164 phone number (``+`` and up to 15 digits,
  the form the validator normalizes phones to) is left alone. A spreadsheet reads it as a
  number at worst, which cannot call anything, and machines get clean phone numbers.
"""

from __future__ import annotations

import contextlib
import csv
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self, TextIO

import xlsxwriter

from group_orders.services.ingest.model import CANONICAL_COLUMNS, RowResult, RowStatus
from group_orders.storage.base import Storage

REJECTED_EXTRA_COLUMNS: tuple[str, ...] = ("source_row", "error_codes", "error_fields", "messages")
NORMALIZED_CSV_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, "source_row", "row_status")
ACCEPTED_COLUMNS: tuple[str, ...] = (*CANONICAL_COLUMNS, "source_row")
ACCEPTED_SHEET = "Accepted orders"
REJECTED_SHEET = "Rejected orders"
EXCEL_MAX_ROWS = 1_048_576

# Column widths come from the header and the first rows only: measuring every row would
# cost on every row, and a sample this size is enough to size a column for reading.
WIDTH_SAMPLE_ROWS = 100
MIN_WIDTH = 8
MAX_WIDTH = 60

_FORMULA_TRIGGERS = frozenset("=+-@\t\r")
_E164_PHONE = re.compile(r"\+[0-9]{1,15}")
_EXTRA_COLUMN_KEYS = frozenset(REJECTED_EXTRA_COLUMNS)
_WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}


@dataclass(frozen=True)
class ResultKeys:
    """The storage keys of the three result files of one group order."""

    normalized_csv: str
    accepted_xlsx: str
    rejected_xlsx: str


def result_keys(group_order_id: uuid.UUID) -> ResultKeys:
    """Where the result files of a group order are stored."""
    return ResultKeys(
        normalized_csv=f"{group_order_id}/normalized.csv",
        accepted_xlsx=f"{group_order_id}/accepted.xlsx",
        rejected_xlsx=f"{group_order_id}/rejected.xlsx",
    )


def csv_safe(value: str) -> str:
    """``value`` as a CSV cell that no spreadsheet runs as a formula (see the module)."""
    if value[:1] in _FORMULA_TRIGGERS and not _E164_PHONE.fullmatch(value):
        return "'" + value
    return value


def _column_width(characters: int) -> int:
    return max(MIN_WIDTH, min(MAX_WIDTH, characters + 2))


class _SheetWriter:
    """One workbook written row by row, continued on a new sheet when one is full."""

    def __init__(self, path: Path, title: str, header: Sequence[str], max_rows: int) -> None:
        self._workbook: Any = xlsxwriter.Workbook(str(path), _WORKBOOK_OPTIONS)
        self._bold = self._workbook.add_format({"bold": True})
        self._title = title
        self._header = tuple(header)
        self._max_rows = max_rows
        self._worksheets: list[Any] = []
        self._characters = [len(name) for name in self._header]
        self._sampled = 0
        self._closed = False
        self._row = 0
        self._add_sheet()

    def _add_sheet(self) -> None:
        number = len(self._worksheets) + 1
        title = self._title if number == 1 else f"{self._title} ({number})"
        worksheet = self._workbook.add_worksheet(title)
        worksheet.freeze_panes(1, 0)
        for column, name in enumerate(self._header):
            worksheet.write_string(0, column, name, self._bold)
        self._worksheets.append(worksheet)
        # Bound once per sheet: the per-cell calls are the hot loop.
        self._write_string = worksheet.write_string
        self._write_number = worksheet.write_number
        self._row = 1

    def append(self, values: Sequence[str | int | None]) -> None:
        if self._row == self._max_rows:
            self._add_sheet()
        row = self._row
        write_string = self._write_string
        write_number = self._write_number
        for column, value in enumerate(values):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                write_string(row, column, value)
            else:
                write_number(row, column, value)
        self._row = row + 1
        if self._sampled < WIDTH_SAMPLE_ROWS:
            self._sampled += 1
            characters = self._characters
            for column, value in enumerate(values):
                if value is not None:
                    length = len(value) if isinstance(value, str) else len(str(value))
                    if length > characters[column]:
                        characters[column] = length

    def close(self) -> None:
        """Finish the file. Called at most once, even when it fails."""
        if self._closed:
            return
        self._closed = True
        widths = [_column_width(characters) for characters in self._characters]
        for worksheet in self._worksheets:
            # In constant_memory mode the column widths are kept apart from the flushed
            # rows and written at close, so they can still be set now.
            for column, width in enumerate(widths):
                worksheet.set_column(column, column, width)
        self._workbook.close()


class ResultFileWriter:
    """Writes the three result files of one group order, fed one ``RowResult`` at a time.

    Nothing is visible under the final keys until ``publish``, which closes the files and
    moves each one into place atomically: a rename, or a completed upload to an object
    store (each file on its own: a reader can see the CSV a moment before the workbooks,
    so completion is recorded after ``publish`` returns).
    ``abort`` closes and deletes the temporaries.
    Used as a context manager, leaving the block without ``publish`` (by an exception or
    otherwise) aborts.
    """

    def __init__(
        self,
        storage: Storage,
        keys: ResultKeys,
        source_header: Sequence[str],
        *,
        max_sheet_rows: int = EXCEL_MAX_ROWS,
    ) -> None:
        if not 2 <= max_sheet_rows <= EXCEL_MAX_ROWS:
            raise ValueError(f"max_sheet_rows must be between 2 and {EXCEL_MAX_ROWS}")
        self._storage = storage
        self._state = "open"
        # A re-uploaded rejected file brings the extra columns back: leave them out.
        self._kept_cells = tuple(
            index
            for index, name in enumerate(source_header)
            if name.strip().lower() not in _EXTRA_COLUMN_KEYS
        )
        rejected_header = [source_header[index] for index in self._kept_cells]
        rejected_header += REJECTED_EXTRA_COLUMNS

        self._temporaries: list[tuple[Path, str]] = []
        self._csv_file: TextIO | None = None
        self._workbooks: list[_SheetWriter] = []
        try:
            csv_path = self._temporary(keys.normalized_csv)
            self._csv_file = csv_path.open("w", encoding="utf-8", newline="")
            self._csv = csv.writer(self._csv_file)
            self._csv.writerow(NORMALIZED_CSV_COLUMNS)
            self._accepted = _SheetWriter(
                self._temporary(keys.accepted_xlsx),
                ACCEPTED_SHEET,
                ACCEPTED_COLUMNS,
                max_sheet_rows,
            )
            self._workbooks.append(self._accepted)
            self._rejected = _SheetWriter(
                self._temporary(keys.rejected_xlsx),
                REJECTED_SHEET,
                rejected_header,
                max_sheet_rows,
            )
            self._workbooks.append(self._rejected)
        except BaseException:
            self.abort()
            raise

    def _temporary(self, key: str) -> Path:
        path = self._storage.temporary_path(key)
        self._temporaries.append((path, key))
        return path

    def write(self, result: RowResult) -> None:
        """Add one row: to the CSV always, and to the accepted or the rejected workbook."""
        if self._state != "open":
            raise RuntimeError(f"the result files are already {self._state}")
        normalized = result.normalized
        values = [normalized.get(column) for column in CANONICAL_COLUMNS]
        csv_row = [csv_safe(value) if isinstance(value, str) else value for value in values]
        csv_row += (result.source_row, result.status.value)
        self._csv.writerow(csv_row)
        if result.status is RowStatus.accepted:
            values.append(result.source_row)
            self._accepted.append(values)
            return
        cells = result.cells
        count = len(cells)
        errors = result.errors
        row: list[str | int | None] = [
            cells[index] if index < count else "" for index in self._kept_cells
        ]
        row += (
            result.source_row,
            ", ".join([error.code.value for error in errors]),
            ", ".join([error.field for error in errors]),
            "; ".join([error.message for error in errors]),
        )
        self._rejected.append(row)

    def publish(self) -> None:
        """Close the three files and publish each one to its key in one step."""
        if self._state != "open":
            raise RuntimeError(f"the result files are already {self._state}")
        try:
            self._close_files()
        except BaseException:
            self.abort()
            raise
        while self._temporaries:
            path, key = self._temporaries[0]
            try:
                self._storage.publish(path, key)
            except BaseException:
                self.abort()
                raise
            del self._temporaries[0]
        self._state = "published"

    def abort(self) -> None:
        """Close the files and delete them; nothing is published. Safe to call twice."""
        if self._state == "published":
            return
        self._state = "aborted"
        try:
            # xlsxwriter keeps each sheet's rows in a temporary file of its own until the
            # workbook is closed; closing is the public way to have those removed. The
            # files are thrown away, so a failure to finish them changes nothing.
            with contextlib.suppress(Exception):
                self._close_files()
        finally:
            for path, _ in self._temporaries:
                path.unlink(missing_ok=True)
            self._temporaries.clear()

    def _close_files(self) -> None:
        errors: list[BaseException] = []
        if self._csv_file is not None:
            csv_file, self._csv_file = self._csv_file, None
            try:
                csv_file.close()
            except Exception as error:
                errors.append(error)
        for workbook in self._workbooks:
            try:
                workbook.close()
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._state == "open":
            self.abort()
