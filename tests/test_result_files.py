"""The result files: their headers and rows, formula safety, sheet overflow, publishing."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import openpyxl
import pytest
from openpyxl.cell.cell import Cell
from openpyxl.utils.escape import unescape
from openpyxl.worksheet.worksheet import Worksheet

from group_orders.services.ingest.model import (
    CANONICAL_COLUMNS,
    RowError,
    RowErrorCode,
    RowResult,
    RowStatus,
)
from group_orders.services.ingest.result_files import (
    ACCEPTED_COLUMNS,
    NORMALIZED_CSV_COLUMNS,
    REJECTED_EXTRA_COLUMNS,
    ResultFileWriter,
    ResultKeys,
    csv_safe,
    result_keys,
)
from group_orders.storage.local import LocalStorage

SOURCE_HEADER = ("Order ID", "Name", "Street", "City", "ZIP", "Country", "SKU", "Qty", "Phone")
FORMULA_LOOKING = ("=1+1", "+SUM(A1)", "-2+3", "@cmd", "\t=x", "\r=x")
GROUP_ORDER_ID = uuid.UUID("3f2b8c1e-0000-4000-8000-000000000001")


DEFAULTS: dict[str, str | int | None] = {
    "external_order_id": "A-1",
    "recipient_name": "Jürgen Müller",
    "address_line1": "Hauptstraße 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
    "sku": "MUG-01",
    "quantity": 2,
}


def normalized_values(**values: str | int | None) -> dict[str, str | int | None]:
    return {**dict.fromkeys(CANONICAL_COLUMNS), **DEFAULTS, **values}


def accepted_row(source_row: int, **values: str | int | None) -> RowResult:
    normalized = normalized_values(**values)
    cells = tuple(str(normalized[column] or "") for column in CANONICAL_COLUMNS[:9])
    return RowResult(source_row, RowStatus.accepted, cells, normalized)


def rejected_row(source_row: int, cells: Sequence[str], *errors: RowError) -> RowResult:
    return RowResult(
        source_row,
        RowStatus.rejected,
        tuple(cells),
        normalized_values(external_order_id=cells[0] if cells else None),
        list(errors),
    )


def error(code: RowErrorCode, field: str, message: str) -> RowError:
    return RowError(code=code, field=field, value="", message=message)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "files")


@pytest.fixture
def keys() -> ResultKeys:
    return result_keys(GROUP_ORDER_ID)


def write_all(
    storage: LocalStorage,
    keys: ResultKeys,
    rows: Sequence[RowResult],
    *,
    source_header: Sequence[str] = SOURCE_HEADER,
    max_sheet_rows: int = 1_048_576,
) -> None:
    with ResultFileWriter(storage, keys, source_header, max_sheet_rows=max_sheet_rows) as writer:
        for row in rows:
            writer.write(row)
        writer.publish()


def read_csv(storage: LocalStorage, key: str) -> list[list[str]]:
    with storage.path_of(key).open(encoding="utf-8", newline="") as file:
        return list(csv.reader(file, strict=True))


def sheets(storage: LocalStorage, key: str) -> list[Worksheet]:
    return list(openpyxl.load_workbook(storage.path_of(key)).worksheets)


def cell_values(sheet: Worksheet) -> list[list[object]]:
    # Excel keeps control characters such as CR as _xHHHH_ escapes in the file and
    # shows them decoded; openpyxl leaves inline strings encoded.
    return [
        [unescape(cell.value) if isinstance(cell.value, str) else cell.value for cell in row]
        for row in sheet.iter_rows()
    ]


def all_cells(sheet: Worksheet) -> Iterator[Cell]:
    for row in sheet.iter_rows():
        yield from row


def column_widths(sheet: Worksheet) -> dict[int, float]:
    # Adjacent columns of equal width are stored as one range.
    return {
        index: dimension.width
        for dimension in sheet.column_dimensions.values()
        for index in range(dimension.min, dimension.max + 1)
    }


def files_under(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_result_keys_are_under_the_group_order() -> None:
    # when
    keys = result_keys(GROUP_ORDER_ID)

    # then
    assert keys == ResultKeys(
        normalized_csv=f"{GROUP_ORDER_ID}/normalized.csv",
        accepted_xlsx=f"{GROUP_ORDER_ID}/accepted.xlsx",
        rejected_xlsx=f"{GROUP_ORDER_ID}/rejected.xlsx",
    )


def test_normalized_csv_holds_every_row_with_its_status(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    rows = [
        accepted_row(2, phone="+4930123456", notes="ring twice"),
        rejected_row(3, ["A-2", "Zoë"], error(RowErrorCode.missing_value, "sku", "SKU is empty")),
    ]

    # when
    write_all(storage, keys, rows)

    # then
    content = storage.path_of(keys.normalized_csv).read_bytes()
    assert not content.startswith(b"\xef\xbb\xbf")
    header, *written = read_csv(storage, keys.normalized_csv)
    assert header == list(NORMALIZED_CSV_COLUMNS)
    base = {**dict.fromkeys(NORMALIZED_CSV_COLUMNS, ""), **DEFAULTS, "quantity": "2"}
    accepted_at_2 = {"source_row": "2", "row_status": "accepted"}
    assert [dict(zip(header, row, strict=True)) for row in written] == [
        {**base, "phone": "+4930123456", "notes": "ring twice", **accepted_at_2},
        {**base, "external_order_id": "A-2", "source_row": "3", "row_status": "rejected"},
    ]


def test_accepted_workbook_holds_the_normalized_accepted_rows(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    rows = [
        accepted_row(2, email="a@example.com"),
        rejected_row(3, ["A-2"], error(RowErrorCode.unknown_sku, "sku", "No such SKU")),
        accepted_row(4, external_order_id="A-3", quantity=12),
    ]

    # when
    write_all(storage, keys, rows)

    # then
    [sheet] = sheets(storage, keys.accepted_xlsx)
    assert sheet.title == "Accepted orders"
    header, *written = cell_values(sheet)
    assert header == list(ACCEPTED_COLUMNS)
    base = {**dict.fromkeys(ACCEPTED_COLUMNS), **DEFAULTS}
    assert [dict(zip(header, row, strict=True)) for row in written] == [
        {**base, "email": "a@example.com", "source_row": 2},
        {**base, "external_order_id": "A-3", "quantity": 12, "source_row": 4},
    ]


def test_rejected_workbook_holds_the_cells_as_uploaded_and_the_errors(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given: one row short of cells, one with a cell too many
    short = ["A-2", "Zoë", "Rue 1", "Paris", "75001", "France", "NOPE"]
    long = ["A-3", "Ann", "Main St 2", "Leeds", "LS1", "GB", "MUG-01", "0", "", "surplus"]
    rows = [
        accepted_row(2),
        rejected_row(
            3,
            short,
            error(RowErrorCode.unknown_sku, "sku", "No product has SKU NOPE"),
            error(RowErrorCode.missing_value, "quantity", "Quantity is empty"),
        ),
        rejected_row(4, long, error(RowErrorCode.invalid_quantity, "quantity", "Must be 1+")),
    ]

    # when
    write_all(storage, keys, rows)

    # then
    [sheet] = sheets(storage, keys.rejected_xlsx)
    assert sheet.title == "Rejected orders"
    first_errors = "No product has SKU NOPE; Quantity is empty"
    assert cell_values(sheet) == [
        [*SOURCE_HEADER, "source_row", "error_codes", "error_fields", "messages"],
        [*short, None, None, 3, "unknown-sku, missing-value", "sku, quantity", first_errors],
        [*long[:7], "0", None, 4, "invalid-quantity", "quantity", "Must be 1+"],
    ]


def test_formula_looking_values_are_text_cells_in_the_workbooks(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    accepted = [accepted_row(2 + index, notes=value) for index, value in enumerate(FORMULA_LOOKING)]
    rejected = rejected_row(9, FORMULA_LOOKING, error(RowErrorCode.malformed_row, "row", "-bad"))

    # when
    write_all(storage, keys, [*accepted, rejected])

    # then
    [accepted_sheet] = sheets(storage, keys.accepted_xlsx)
    [rejected_sheet] = sheets(storage, keys.rejected_xlsx)
    notes = ACCEPTED_COLUMNS.index("notes")
    assert [row[notes] for row in cell_values(accepted_sheet)[1:]] == list(FORMULA_LOOKING)
    assert cell_values(rejected_sheet)[1][: len(FORMULA_LOOKING)] == list(FORMULA_LOOKING)
    assert cell_values(rejected_sheet)[1][-1] == "-bad"
    for sheet in (accepted_sheet, rejected_sheet):
        assert all(cell.data_type != "f" for cell in all_cells(sheet))
        assert all(
            cell.data_type == "s"
            for cell in all_cells(sheet)
            if isinstance(cell.value, str) and unescape(cell.value) in FORMULA_LOOKING
        )


def test_formula_looking_values_are_quoted_in_the_csv(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    rows = [accepted_row(2 + index, notes=value) for index, value in enumerate(FORMULA_LOOKING)]

    # when
    write_all(storage, keys, rows)

    # then
    notes = NORMALIZED_CSV_COLUMNS.index("notes")
    written = [row[notes] for row in read_csv(storage, keys.normalized_csv)[1:]]
    assert written == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@cmd", "'\t=x", "'\r=x"]


def test_e164_phones_are_left_alone_in_the_csv_and_plain_text_in_the_workbook(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    rows = [accepted_row(2, phone="+4930123456"), accepted_row(3, phone="+49 30 123456")]

    # when
    write_all(storage, keys, rows)

    # then: only the exact E.164 form is exempt from the quote
    phone = NORMALIZED_CSV_COLUMNS.index("phone")
    assert [row[phone] for row in read_csv(storage, keys.normalized_csv)[1:]] == [
        "+4930123456",
        "'+49 30 123456",
    ]
    [sheet] = sheets(storage, keys.accepted_xlsx)
    phone_cells = [row[ACCEPTED_COLUMNS.index("phone")] for row in sheet.iter_rows(min_row=2)]
    assert [(cell.value, cell.data_type) for cell in phone_cells] == [
        ("+4930123456", "s"),
        ("+49 30 123456", "s"),
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("a=b", "a=b"),
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+4930123456", "+4930123456"),
        ("+1234567890123456", "'+1234567890123456"),
        ("+49-30", "'+49-30"),
        ("-5", "'-5"),
        ("'=already", "'=already"),
    ],
)
def test_csv_safe_quotes_only_what_a_spreadsheet_would_run(value: str, expected: str) -> None:
    # when
    safe = csv_safe(value)

    # then
    assert safe == expected


def test_rows_past_the_sheet_limit_continue_on_new_sheets_with_the_header(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given: five rows per sheet, the header included
    rows = [accepted_row(2 + index, external_order_id=f"A-{index}") for index in range(9)]
    rows.append(rejected_row(11, ["R-1"], error(RowErrorCode.unknown_sku, "sku", "No SKU")))

    # when
    write_all(storage, keys, rows, max_sheet_rows=5)

    # then
    accepted = sheets(storage, keys.accepted_xlsx)
    assert [sheet.title for sheet in accepted] == [
        "Accepted orders",
        "Accepted orders (2)",
        "Accepted orders (3)",
    ]
    assert [[row[0] for row in cell_values(sheet)] for sheet in accepted] == [
        ["external_order_id", "A-0", "A-1", "A-2", "A-3"],
        ["external_order_id", "A-4", "A-5", "A-6", "A-7"],
        ["external_order_id", "A-8"],
    ]
    assert all(sheet.freeze_panes == "A2" for sheet in accepted)
    assert [sheet.title for sheet in sheets(storage, keys.rejected_xlsx)] == ["Rejected orders"]


def test_the_header_is_frozen_and_bold_and_the_columns_sized(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    rows = [accepted_row(2, notes="x" * 200, city="Berlin")]

    # when
    write_all(storage, keys, rows)

    # then
    for key in (keys.accepted_xlsx, keys.rejected_xlsx):
        [sheet] = sheets(storage, key)
        assert sheet.freeze_panes == "A2"
        assert all(cell.font.b for cell in sheet[1])
    [sheet] = sheets(storage, keys.accepted_xlsx)
    widths = column_widths(sheet)
    assert sorted(widths) == list(range(1, len(ACCEPTED_COLUMNS) + 1))
    assert all(8 <= width <= 61 for width in widths.values())
    order_id, city = (ACCEPTED_COLUMNS.index(name) + 1 for name in ("external_order_id", "city"))
    notes = ACCEPTED_COLUMNS.index("notes") + 1
    assert widths[order_id] > widths[city]
    assert widths[notes] == max(widths.values())


def test_nothing_is_under_the_final_keys_before_publish(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    writer = ResultFileWriter(storage, keys, SOURCE_HEADER)
    writer.write(accepted_row(2))
    final_keys = (keys.normalized_csv, keys.accepted_xlsx, keys.rejected_xlsx)

    # when
    before = [storage.exists(key) for key in final_keys]
    writer.publish()
    after = [storage.exists(key) for key in final_keys]

    # then
    assert before == [False, False, False]
    assert after == [True, True, True]
    assert [path.name for path in files_under(storage.root)] == [
        "accepted.xlsx",
        "normalized.csv",
        "rejected.xlsx",
    ]


def test_abort_publishes_nothing_and_leaves_no_temporary_files(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    writer = ResultFileWriter(storage, keys, SOURCE_HEADER)
    writer.write(accepted_row(2))
    writer.write(rejected_row(3, ["A-2"], error(RowErrorCode.unknown_sku, "sku", "No SKU")))

    # when
    writer.abort()

    # then
    assert files_under(storage.root) == []
    with pytest.raises(RuntimeError, match="aborted"):
        writer.write(accepted_row(4))


def test_an_exception_inside_the_block_aborts(storage: LocalStorage, keys: ResultKeys) -> None:
    # given
    def write_then_fail() -> None:
        with ResultFileWriter(storage, keys, SOURCE_HEADER) as writer:
            writer.write(accepted_row(2))
            raise ZeroDivisionError

    # when
    with pytest.raises(ZeroDivisionError):
        write_then_fail()

    # then
    assert files_under(storage.root) == []


def test_leaving_the_block_without_publish_aborts(storage: LocalStorage, keys: ResultKeys) -> None:
    # when
    with ResultFileWriter(storage, keys, SOURCE_HEADER) as writer:
        writer.write(accepted_row(2))

    # then
    assert files_under(storage.root) == []


def test_published_files_cannot_be_written_or_published_again(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given
    writer = ResultFileWriter(storage, keys, SOURCE_HEADER)
    writer.publish()

    # when
    writer.abort()

    # then: abort after publish keeps the files
    assert storage.exists(keys.accepted_xlsx)
    with pytest.raises(RuntimeError, match="published"):
        writer.write(accepted_row(2))
    with pytest.raises(RuntimeError, match="published"):
        writer.publish()


@pytest.mark.parametrize("max_sheet_rows", [0, 1, 1_048_577])
def test_a_sheet_limit_excel_cannot_hold_is_refused(
    storage: LocalStorage, keys: ResultKeys, max_sheet_rows: int
) -> None:
    # when
    with pytest.raises(ValueError, match="max_sheet_rows"):
        ResultFileWriter(storage, keys, SOURCE_HEADER, max_sheet_rows=max_sheet_rows)

    # then
    assert files_under(storage.root) == []


def test_the_rejected_file_saved_as_csv_can_be_uploaded_again(
    storage: LocalStorage, keys: ResultKeys
) -> None:
    # given: a rejected row whose cells include formula-looking text
    original = ["A-2", "=Zoë", "Rue 1", "Paris", "75001", "France", "NOPE", "2", "+33 1 23"]
    rejected = rejected_row(
        3,
        original,
        error(RowErrorCode.unknown_sku, "sku", "No product has SKU NOPE"),
        error(RowErrorCode.invalid_phone, "phone", "Not a phone number"),
    )
    write_all(storage, keys, [rejected])

    # when: a person saves the sheet as CSV, the way a spreadsheet writes cell text
    [sheet] = sheets(storage, keys.rejected_xlsx)
    saved = io.StringIO()
    csv.writer(saved).writerows(
        [("" if value is None else str(value)) for value in row] for row in cell_values(sheet)
    )
    saved.seek(0)
    reuploaded = list(csv.reader(saved, strict=True))

    # then: the original cells under the original header, then the extra columns
    header, row = reuploaded
    assert header == [*SOURCE_HEADER, *REJECTED_EXTRA_COLUMNS]
    assert dict(zip(header, row, strict=True)) == {
        **dict(zip(SOURCE_HEADER, original, strict=True)),
        "source_row": "3",
        "error_codes": "unknown-sku, invalid-phone",
        "error_fields": "sku, phone",
        "messages": "No product has SKU NOPE; Not a phone number",
    }

    # when: that file is rejected again
    second_keys = result_keys(uuid.uuid4())
    write_all(
        storage,
        second_keys,
        [rejected_row(2, row, error(RowErrorCode.unknown_sku, "sku", "Still no SKU NOPE"))],
        source_header=header,
    )

    # then: the extra columns are not repeated and the cells are the original ones
    [second_sheet] = sheets(storage, second_keys.rejected_xlsx)
    assert cell_values(second_sheet) == [
        [*SOURCE_HEADER, *REJECTED_EXTRA_COLUMNS],
        [*original, 2, "unknown-sku", "sku", "Still no SKU NOPE"],
    ]
