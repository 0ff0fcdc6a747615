"""Reading uploaded order files: real files, written the ways spreadsheets and people write them."""

from __future__ import annotations

import codecs
import csv
import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from group_orders.services.ingest.model import (
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    FileError,
    SourceFile,
    SourceRow,
)
from group_orders.services.ingest.reader import (
    ALIASES,
    FIELD_SIZE_LIMIT,
    IGNORED_COLUMNS,
    LINE_LIMIT,
    canonical_column,
    detect_delimiter,
    open_source,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
HEADER = ["Order ID", "Name", "Address", "City", "Zip", "Country", "SKU", "Qty"]


def order(order_id: str, name: str = "Jane Doe", **cells: str) -> list[str]:
    values = {
        "Address": "Main Street 1",
        "City": "Berlin",
        "Zip": "10115",
        "Country": "DE",
        "SKU": "MUG-1",
        "Qty": "1",
        **cells,
    }
    return [order_id, name, *(values[column] for column in HEADER[2:])]


def csv_text(rows: list[list[str]], delimiter: str = ",", header: list[str] = HEADER) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write(tmp_path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path = tmp_path / "orders.csv"
    path.write_bytes(content if isinstance(content, bytes) else content.encode(encoding))
    return path


def read(path: Path) -> tuple[SourceFile, list[SourceRow]]:
    source, rows = open_source(path)
    return source, list(rows)


def file_error(path: Path) -> str:
    with pytest.raises(FileError) as raised:
        open_source(path)
    return raised.value.message


# Encodings


@pytest.mark.parametrize(
    ("bom", "codec", "reported"),
    [
        (b"", "utf-8", "utf-8"),
        (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16"),
        (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16"),
        (b"", "cp1252", "cp1252"),
    ],
)
def test_every_supported_encoding_reads_the_same_values(
    tmp_path: Path, bom: bytes, codec: str, reported: str
) -> None:
    # given
    text = csv_text([order("A-1", "José Müller", City="Köln", SKU="MUG-€")])
    path = write(tmp_path, bom + text.encode(codec))

    # when
    source, rows = read(path)

    # then
    assert source.encoding == reported
    assert source.header == tuple(HEADER)
    assert [row.cells for row in rows] == [
        ("A-1", "José Müller", "Main Street 1", "Köln", "10115", "DE", "MUG-€", "1")
    ]


def test_a_windows_1252_byte_after_the_first_megabyte_still_decides_the_encoding(
    tmp_path: Path,
) -> None:
    # given: a million ASCII bytes, then one order with a Windows-1252 "é"
    filler = [order(f"A-{number}") for number in range(1, 25_000)]
    text = csv_text([*filler, order("B-1", "Renée")])
    assert len(text) > 1_100_000
    path = write(tmp_path, text, "cp1252")

    # when
    source, rows = read(path)

    # then
    assert source.encoding == "cp1252"
    assert rows[-1].values["recipient_name"] == "Renée"


def test_bytes_undefined_in_windows_1252_are_read_as_replacement_characters(
    tmp_path: Path,
) -> None:
    # given: 0x81 has no character in Windows-1252 and is not UTF-8 either
    path = write(tmp_path, csv_text([order("A-1", "Ren_e")]).encode().replace(b"_", b"\x81"))

    # when
    source, rows = read(path)

    # then
    assert source.encoding == "cp1252"
    assert rows[0].values["recipient_name"] == "Ren\ufffde"


# Delimiters


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_every_delimiter_is_detected(tmp_path: Path, delimiter: str) -> None:
    # given: values that hold the other delimiters, quoted where they must be
    rows = [
        order("A-1", "Doe, Jane; Dr.", Address="Main St | 1"),
        order("A-2", "Tab\there"),
    ]
    path = write(tmp_path, csv_text(rows, delimiter))

    # when
    source, read_rows = read(path)

    # then
    assert source.delimiter == delimiter
    assert [row.cells for row in read_rows] == [tuple(row) for row in rows]


def test_the_header_line_overrules_a_sniffer_misled_by_free_text() -> None:
    # given: a semicolon file whose notes are full of commas
    sample = "Order ID;Name;Notes\n" + "".join(f"A-{n};Jane;a, b, c, d, e\n" for n in range(20))

    # when
    delimiter = detect_delimiter(sample)

    # then
    assert delimiter == ";"


def test_a_header_without_any_delimiter_is_read_as_one_column() -> None:
    # when
    delimiter = detect_delimiter("Order ID\nA-1\n")

    # then
    assert delimiter == ","


# Header


@pytest.mark.parametrize(
    ("spelling", "column"),
    [(alias, column) for column, aliases in ALIASES.items() for alias in aliases]
    + [(column, column) for column in CANONICAL_COLUMNS],
)
def test_every_alias_names_its_column(spelling: str, column: str) -> None:
    # when / then
    assert canonical_column(spelling) == column


@pytest.mark.parametrize(
    ("spelling", "column"),
    [
        ("ORDER-ID", "external_order_id"),
        ("  order_no ", "external_order_id"),
        ("Order #No.", "external_order_id"),
        ("E-Mail-Address", "email"),
        ("zip_code", "postal_code"),
        ("Postal Code:", "postal_code"),
        ("SHIP TO NAME", "recipient_name"),
        ("address line 1", "address_line1"),
        ("Address_Line_2", "address_line2"),
        ("STRASSE", "address_line1"),
        ("Qty.", "quantity"),
        ("Gift message", None),
    ],
)
def test_header_spellings_ignore_case_spaces_and_punctuation(
    spelling: str, column: str | None
) -> None:
    # when / then
    assert canonical_column(spelling) == column


def test_the_header_maps_columns_and_lists_the_unknown_ones(tmp_path: Path) -> None:
    # given: odd spellings, a column nobody knows, a second "name" column, a blank one
    header = ["ORDER_NO", "Full Name", "Customer Name", "Street", "Town", "PLZ", "Land"]
    header += ["Article Number", "Quantity", "Gift wrap", ""]
    row = ["A-1", "Jane", "Acme", "Main St 1", "Berlin", "10115", "DE", "MUG-1", "2", "yes", ""]
    path = write(tmp_path, csv_text([row], header=header))

    # when
    source, rows = read(path)

    # then
    assert source.columns == {
        "external_order_id": 0,
        "recipient_name": 1,
        "address_line1": 3,
        "city": 4,
        "postal_code": 5,
        "country": 6,
        "sku": 7,
        "quantity": 8,
    }
    assert source.unknown_columns == ("Customer Name", "Gift wrap")
    assert rows[0].values == {
        **dict.fromkeys(CANONICAL_COLUMNS, ""),
        "external_order_id": "A-1",
        "recipient_name": "Jane",
        "address_line1": "Main St 1",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
        "sku": "MUG-1",
        "quantity": "2",
    }


def test_result_file_columns_are_ignored_so_a_fixed_file_can_be_uploaded_again(
    tmp_path: Path,
) -> None:
    # given: the rejected rows saved as CSV, with the columns the result file adds
    header = ["Source Row", *HEADER, "Row Status", "Error Codes", "Error Fields", "Messages"]
    row = ["2", *order("A-1"), "rejected", "invalid-country", "country", "fixed now"]
    path = write(tmp_path, csv_text([row], header=header))

    # when
    source, rows = read(path)

    # then
    assert source.unknown_columns == ()
    assert rows[0].values["external_order_id"] == "A-1"
    assert rows[0].read_error is None


def test_the_header_is_the_first_non_blank_line_and_is_row_one(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, "\r\n  \r\n,,,\r\n" + csv_text([order("A-1")]))

    # when
    source, rows = read(path)

    # then
    assert source.header == tuple(HEADER)
    assert [row.source_row for row in rows] == [2]


def test_missing_required_columns_are_named_with_the_header_that_was_found(
    tmp_path: Path,
) -> None:
    # given
    header = ["Order ID", "Name", "Address", "City", "Zip", "Country", "Notes"]
    path = write(tmp_path, csv_text([["A-1", "Jane", "x", "y", "1", "DE", ""]], header=header))

    # when
    message = file_error(path)

    # then
    assert message == (
        "Required columns are missing: sku, quantity. The header has: Order ID, Name, "
        "Address, City, Zip, Country, Notes. Rename the columns (see docs/uploading.md) "
        "and upload again."
    )


def test_a_file_without_a_header_row_is_refused(tmp_path: Path) -> None:
    # given: the first line is already an order
    path = write(tmp_path, "A-1,Jane,Main St 1,Berlin,10115,DE,MUG-1,1\r\n")

    # when
    message = file_error(path)

    # then
    assert message.startswith("The first row is not a header: none of its cells names")
    assert "A-1, Jane, Main St 1" in message


@pytest.mark.parametrize("after_header", ["", "\r\n", "\r\n,,,,\r\n   \r\n"])
def test_a_header_without_orders_is_refused(tmp_path: Path, after_header: str) -> None:
    # given
    path = write(tmp_path, csv_text([]) + after_header)

    # when / then
    assert file_error(path) == "The file has a header row but no orders under it."


def test_a_header_that_csv_cannot_read_is_refused(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, 'Order ID,"Name\r\nA-1,Jane\r\n')

    # when
    message = file_error(path)

    # then
    assert message.startswith("The header row can't be read: A quoted value is not closed")


# Empty and binary files


@pytest.mark.parametrize(
    "content",
    [b"", b"   \r\n\t\r\n\n", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, b",,,\r\n;;\r\n"],
    ids=["empty", "whitespace", "utf-8-bom-only", "utf-16-bom-only", "delimiters-only"],
)
def test_an_empty_file_is_refused(tmp_path: Path, content: bytes) -> None:
    # given
    path = write(tmp_path, content)

    # when
    message = file_error(path)

    # then
    assert message == (
        "The file is empty; upload a CSV file with a header row and one row per order."
    )


@pytest.mark.parametrize(
    "content",
    [
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256)) * 4,
        csv_text([order("A-1")]).encode() + b"\x00",
        bytes(range(1, 32)) * 100,
    ],
    ids=["png", "nul-in-text", "control-characters"],
)
def test_a_file_that_is_not_text_is_refused(tmp_path: Path, content: bytes) -> None:
    # given
    path = write(tmp_path, content)

    # when
    message = file_error(path)

    # then
    assert message == "This is not a text file; upload a CSV file."


# Rows


def test_quoted_values_keep_their_line_breaks_and_rows_count_records(tmp_path: Path) -> None:
    # given
    rows = [
        order("A-1", Address="Main Street 1\nBack door"),
        order("A-2", Address="Line one\r\nLine two\r\nLine three"),
        order("A-3"),
    ]
    path = write(tmp_path, csv_text(rows))

    # when
    _, read_rows = read(path)

    # then
    assert [(row.source_row, row.values["address_line1"]) for row in read_rows] == [
        (2, "Main Street 1\nBack door"),
        (3, "Line one\r\nLine two\r\nLine three"),
        (4, "Main Street 1"),
    ]


def test_blank_lines_are_skipped_but_counted(tmp_path: Path) -> None:
    # given
    text = (
        csv_text([order("A-1")]) + "\r\n,,,,,,,\r\n" + csv_text([order("A-2")]).split("\r\n", 1)[1]
    )
    path = write(tmp_path, text)

    # when
    _, rows = read(path)

    # then
    assert [(row.source_row, row.values["external_order_id"]) for row in rows] == [
        (2, "A-1"),
        (5, "A-2"),
    ]


def test_missing_cells_at_the_end_are_empty(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, csv_text([["A-1", "Jane", "Main St 1"]]))

    # when
    _, rows = read(path)

    # then
    assert rows[0].read_error is None
    assert rows[0].values["address_line1"] == "Main St 1"
    assert rows[0].values["quantity"] == ""


def test_a_row_with_more_cells_than_the_header_is_a_read_error(tmp_path: Path) -> None:
    # given: an unquoted comma inside the address, and a row with empty trailing cells
    text = csv_text([order("A-1"), [*order("A-2"), "", ""]])
    text += "A-3,Jane,Main St, 1,Berlin,10115,DE,MUG-1,1\r\n"
    path = write(tmp_path, text)

    # when
    _, rows = read(path)

    # then
    assert [row.read_error for row in rows] == [
        None,
        None,
        "The row has 9 cells, the header has 8. A value that contains the delimiter "
        "(comma) must be in double quotes.",
    ]
    assert rows[2].cells[:4] == ("A-3", "Jane", "Main St", "1")


def test_an_unterminated_quote_costs_one_row_and_reading_resumes(tmp_path: Path) -> None:
    # given: row 4 opens a quote it never closes; later rows have no quotes at all
    lines = [
        ",".join(HEADER),
        "A-1,Jane,Main St 1,Berlin,10115,DE,MUG-1,1",
        "A-2,Joe,Main St 2,Berlin,10115,DE,MUG-1,1",
        'A-3,"Jim,Main St 3,Berlin,10115,DE,MUG-1,1',
        "A-4,Ann,Main St 4,Berlin,10115,DE,MUG-1,1",
        "A-5,Bob,Main St 5,Berlin,10115,DE,MUG-1,1",
    ]
    path = write(tmp_path, "\r\n".join(lines) + "\r\n")

    # when
    _, rows = read(path)

    # then
    assert [(row.source_row, row.values["external_order_id"]) for row in rows] == [
        (2, "A-1"),
        (3, "A-2"),
        (4, ""),
        (5, "A-4"),
        (6, "A-5"),
    ]
    broken = rows[2]
    assert broken.cells == ('A-3,"Jim,Main St 3,Berlin,10115,DE,MUG-1,1',)
    assert broken.read_error is not None
    assert broken.read_error.startswith("A quoted value is not closed")


def test_an_unterminated_quote_closed_by_a_later_quote_loses_no_row(tmp_path: Path) -> None:
    # given: the quote opened in row 3 is "closed" by the quote that starts row 5's name
    lines = [
        ",".join(HEADER),
        "A-1,Jane,Main St 1,Berlin,10115,DE,MUG-1,1",
        'A-2,"Joe,Main St 2,Berlin,10115,DE,MUG-1,1',
        "A-3,Jim,Main St 3,Berlin,10115,DE,MUG-1,1",
        'A-4,"Doe, Ann",Main St 4,Berlin,10115,DE,MUG-1,1',
        'A-5,Bob,"Main St 5",Berlin,10115,DE,MUG-1,1',
        'A-6,Eve,Main St 6,Berlin,10115,DE,MUG-1,"1',
    ]
    path = write(tmp_path, "\r\n".join(lines))

    # when
    _, rows = read(path)

    # then: every order is a row of its own or the text of a malformed row
    accounted = [
        row.values["external_order_id"] if row.read_error is None else row.cells[0][:3]
        for row in rows
    ]
    assert accounted == ["A-1", "A-2", "A-3", "A-4", "A-5", "A-6"]
    assert [row.source_row for row in rows] == [2, 3, 4, 5, 6, 7]
    assert [row.source_row for row in rows if row.read_error] == [3, 7]


def test_text_after_a_closing_quote_is_a_read_error(tmp_path: Path) -> None:
    # given
    text = csv_text([order("A-1")]) + 'A-2,"Jane" Doe,Main St 1,Berlin,10115,DE,MUG-1,1\r\n'
    path = write(tmp_path, text + csv_text([order("A-3")]).split("\r\n", 1)[1])

    # when
    _, rows = read(path)

    # then
    assert [row.read_error is not None for row in rows] == [False, True, False]
    assert rows[1].read_error is not None
    assert rows[1].read_error.startswith("A quoted value is followed by more text")
    assert rows[1].cells == ('A-2,"Jane" Doe,Main St 1,Berlin,10115,DE,MUG-1,1',)


def test_a_value_over_the_field_limit_is_a_read_error_not_a_crash(tmp_path: Path) -> None:
    # given: a quoted value with line breaks, longer than the limit
    giant = ("x" * 999 + "\n") * (FIELD_SIZE_LIMIT // 1000 + 1)
    path = write(tmp_path, csv_text([order("A-1", Address=giant), order("A-2")]))

    # when
    _, rows = read(path)

    # then: the record is cut where the limit is reached; the lines after its first one
    # are read again as rows, as they would be after an unclosed quote
    assert rows[0].read_error is not None
    assert rows[0].read_error.startswith(f"A value is longer than {FIELD_SIZE_LIMIT:,}")
    assert rows[0].cells == ('A-1,Jane Doe,"' + "x" * 999,)
    assert rows[-1].values["external_order_id"] == "A-2"
    assert rows[-1].source_row == len(rows) + 1


def test_a_line_over_the_line_limit_is_a_read_error(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, csv_text([order("A-1", Address="y" * (LINE_LIMIT + 10)), order("A-2")]))

    # when
    _, rows = read(path)

    # then
    assert [(row.source_row, row.read_error is not None) for row in rows] == [
        (2, True),
        (3, False),
    ]
    assert len(rows[0].cells[0]) == 200


def test_a_long_line_inside_an_unclosed_quote_loses_no_line(tmp_path: Path) -> None:
    # given: row 3 opens a quote; row 5 is a line over the limit
    lines = [
        ",".join(HEADER),
        "A-1,Jane,Main St 1,Berlin,10115,DE,MUG-1,1",
        'A-2,"Joe,Main St 2,Berlin,10115,DE,MUG-1,1',
        "A-3,Jim,Main St 3,Berlin,10115,DE,MUG-1,1",
        "A-4," + "y" * (LINE_LIMIT + 10),
        "A-5,Bob,Main St 5,Berlin,10115,DE,MUG-1,1",
    ]
    path = write(tmp_path, "\n".join(lines))

    # when
    _, rows = read(path)

    # then
    assert [(row.source_row, row.cells[0][:3], row.read_error is None) for row in rows] == [
        (2, "A-1", True),
        (3, "A-2", False),
        (4, "A-3", True),
        (5, "A-4", False),
        (6, "A-5", True),
    ]


def test_old_mac_line_endings_are_read(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, csv_text([order("A-1"), order("A-2")]).replace("\r\n", "\r"))

    # when
    _, rows = read(path)

    # then
    assert [row.values["external_order_id"] for row in rows] == ["A-1", "A-2"]


def test_spaces_after_a_delimiter_do_not_hide_a_quoted_value(tmp_path: Path) -> None:
    # given: a hand-edited file
    text = ", ".join(HEADER) + '\nA-1, "Doe, Jane", Main St 1, Berlin, 10115, DE, MUG-1, 1\n'
    path = write(tmp_path, text)

    # when
    _, rows = read(path)

    # then
    assert rows[0].read_error is None
    assert rows[0].values["recipient_name"] == "Doe, Jane"


def test_rows_can_be_closed_before_the_end(tmp_path: Path) -> None:
    # given
    path = write(tmp_path, csv_text([order("A-1"), order("A-2")]))
    _, rows = open_source(path)

    # when
    first = next(rows)
    rows.close()

    # then
    assert first.values["external_order_id"] == "A-1"
    assert list(rows) == []


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hand-written")


@settings(
    max_examples=150,
    deadline=None,
    database=None,
)
@given(
    junk=st.lists(st.text(alphabet='",;|\t xy', max_size=20), min_size=1, max_size=12),
    line_end=st.sampled_from(["\n", "\r\n"]),
)
def test_stray_quotes_anywhere_never_lose_a_line(
    workdir: Path, junk: list[str], line_end: str
) -> None:
    # given: hand-written lines, each with a mark, and quotes wherever they fall
    lines = [f"ID{number:03d}#{text}" for number, text in enumerate(junk)]
    path = workdir / "orders.csv"
    path.write_text(line_end.join([",".join(CANONICAL_COLUMNS), *lines]), encoding="utf-8")

    # when
    _, rows = read(path)

    # then: each mark is in a row, as a value or in the text of a malformed row
    everything = "\n".join(cell for row in rows for cell in row.cells)
    assert [line[:6] for line in lines if line[:6] not in everything] == []
    numbers = [row.source_row for row in rows]
    assert numbers == sorted(set(numbers))
    unsplit = [
        row for row in rows if row.read_error and not row.read_error.startswith("The row has")
    ]
    assert all(len(row.cells) == 1 for row in unsplit)


# Documentation


def uploading_docs() -> str:
    return (DOCS / "uploading.md").read_text(encoding="utf-8")


def test_the_docs_list_every_column_and_alias() -> None:
    # given
    docs = uploading_docs()

    # then
    for column in CANONICAL_COLUMNS:
        assert f"`{column}`" in docs
        for alias in ALIASES.get(column, ()):
            assert re.search(rf"\b{re.escape(alias)}\b", docs), alias
    for column in IGNORED_COLUMNS:
        assert f"`{column}`" in docs
    required = re.findall(r"^\| `(\w+)` \| yes \|", docs, flags=re.MULTILINE)
    assert tuple(dict.fromkeys(required)) == REQUIRED_COLUMNS
