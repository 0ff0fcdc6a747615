"""Validating order rows: every error code, the normal forms, and files written at random."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import email_validator
import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from group_orders.services.ingest.model import (
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    FileError,
    RowError,
    RowErrorCode,
    RowResult,
    RowStatus,
    SourceRow,
)
from group_orders.services.ingest.reader import open_source
from group_orders.services.ingest.validate import (
    MAX_LENGTHS,
    RowValidator,
    normalize_email,
    normalize_phone,
)

DOCS = Path(__file__).resolve().parent.parent / "docs"
CATALOG = frozenset({"MUG-1", "TEE-M", "Cap-Blue"})
GOOD = {
    "external_order_id": "A-1",
    "order_date": "2026-03-31",
    "recipient_name": "Jane Doe",
    "email": "jane@example.com",
    "phone": "+49 30 1234567",
    "address_line1": "Main Street 1",
    "address_line2": "",
    "city": "Berlin",
    "region": "",
    "postal_code": "10115",
    "country": "DE",
    "sku": "MUG-1",
    "quantity": "2",
    "notes": "",
}


def source_row(number: int = 2, /, **values: str) -> SourceRow:
    merged = {**GOOD, **values}
    return SourceRow(source_row=number, cells=tuple(merged.values()), values=merged)


def check(date_order: str = "DMY", /, **values: str) -> RowResult:
    validator = RowValidator(catalog=CATALOG, date_order=date_order)
    return validator.validate(source_row(**values), frozenset())


def problems(result: RowResult) -> list[tuple[RowErrorCode, str, str]]:
    return [(error.code, error.field, error.value) for error in result.errors]


def test_a_good_row_is_accepted_in_normal_form() -> None:
    # when
    result = check(
        recipient_name="  Jane \n  Doe ",
        email="Jane.Doe@Example.COM",
        phone="030 1234567",
        order_date="31.03.2026",
        city="Bad  Homburg",
        country="Deutschland",
        quantity=" 2.0 ",
        notes="  Ring twice.\nThen wait.  ",
    )

    # then
    assert result == RowResult(
        source_row=2,
        status=RowStatus.accepted,
        cells=result.cells,
        normalized={
            "external_order_id": "A-1",
            "order_date": "2026-03-31",
            "recipient_name": "Jane Doe",
            "email": "Jane.Doe@example.com",
            "phone": "+49301234567",
            "address_line1": "Main Street 1",
            "address_line2": None,
            "city": "Bad Homburg",
            "region": None,
            "postal_code": "10115",
            "country": "DE",
            "sku": "MUG-1",
            "quantity": 2,
            "notes": "Ring twice.\nThen wait.",
        },
        errors=[],
    )


def test_text_is_put_in_unicode_normal_form() -> None:
    # given: "é" written as "e" and a combining accent, and a non-breaking space
    result = check(recipient_name="Jose\u0301\u00a0Müller", city="\u00a0Ko\u0308ln ")

    # then
    assert result.normalized["recipient_name"] == "José Müller"
    assert result.normalized["city"] == "Köln"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"recipient_name": "  "}, (RowErrorCode.missing_value, "recipient_name", "  ")),
        ({"email": "jane@"}, (RowErrorCode.invalid_email, "email", "jane@")),
        ({"phone": "12"}, (RowErrorCode.invalid_phone, "phone", "12")),
        ({"country": "Atlantis"}, (RowErrorCode.invalid_country, "country", "Atlantis")),
        ({"postal_code": "1011"}, (RowErrorCode.invalid_postal_code, "postal_code", "1011")),
        ({"order_date": "31.02.2026"}, (RowErrorCode.invalid_date, "order_date", "31.02.2026")),
        ({"quantity": "0"}, (RowErrorCode.invalid_quantity, "quantity", "0")),
        ({"sku": "mug-1"}, (RowErrorCode.unknown_sku, "sku", "mug-1")),
        ({"city": "x" * 101}, (RowErrorCode.value_too_long, "city", "x" * 101)),
    ],
)
def test_each_error_names_its_field_and_the_value_as_uploaded(
    values: dict[str, str], expected: tuple[RowErrorCode, str, str]
) -> None:
    # when
    result = check(**values)

    # then
    assert result.status is RowStatus.rejected
    assert problems(result) == [expected]
    assert result.errors[0].message


def test_messages_say_what_is_wrong_and_what_is_expected() -> None:
    # when
    result = check(
        recipient_name="",
        country="Atlantis",
        quantity="2.5",
        sku="mug-1",
        order_date="03/04/26",
    )

    # then
    assert [error.message for error in result.errors] == [
        "'03/04/26' has a two-digit year, which could be read several ways. Write the year "
        "with four digits, as YYYY-MM-DD, for example 2026-03-31.",
        "Recipient name is empty; every order needs one.",
        "'Atlantis' is not a country we know. Write a two-letter ISO code such as DE, GB or "
        "US, or the country's English name.",
        "SKU 'mug-1' is not in the catalog. SKUs must match exactly, including upper and "
        "lower case.",
        "'2.5' is not a quantity: write a whole number from 1 to 1,000,000.",
    ]


def test_a_row_gets_all_its_errors_at_once_in_column_order() -> None:
    # when
    result = check(
        quantity="many",
        sku="NOPE",
        email="not-an-email",
        recipient_name="",
        phone="0",
        city="",
        postal_code="ABC",
        order_date="someday",
    )

    # then
    assert [(error.code, error.field) for error in result.errors] == [
        (RowErrorCode.invalid_date, "order_date"),
        (RowErrorCode.missing_value, "recipient_name"),
        (RowErrorCode.invalid_email, "email"),
        (RowErrorCode.invalid_phone, "phone"),
        (RowErrorCode.missing_value, "city"),
        (RowErrorCode.invalid_postal_code, "postal_code"),
        (RowErrorCode.unknown_sku, "sku"),
        (RowErrorCode.invalid_quantity, "quantity"),
    ]


def test_a_rejected_row_keeps_what_was_normalized_and_the_text_of_the_rest() -> None:
    # when
    result = check(phone="030 1234567", quantity=" lots ", email=" jane@ ")

    # then
    assert result.normalized["phone"] == "+49301234567"
    assert result.normalized["quantity"] == "lots"
    assert result.normalized["email"] == "jane@"


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_every_required_column_must_have_a_value(column: str) -> None:
    # when
    result = check(**{column: " \t "})

    # then
    assert problems(result) == [(RowErrorCode.missing_value, column, " \t ")]
    assert result.normalized[column] is None


@pytest.mark.parametrize(("column", "limit"), MAX_LENGTHS.items())
def test_every_column_has_a_length_limit(column: str, limit: int) -> None:
    # when
    at_limit = check(**{column: "7" * limit})
    over_limit = check(**{column: "7" * (limit + 1)})

    # then
    assert RowErrorCode.value_too_long not in [error.code for error in at_limit.errors]
    assert problems(over_limit) == [(RowErrorCode.value_too_long, column, "7" * (limit + 1))]
    assert over_limit.errors[0].message.endswith(f"at most {limit:,} are allowed.")


def test_an_order_id_used_twice_in_the_file_is_a_duplicate_from_its_second_row() -> None:
    # given
    validator = RowValidator(catalog=CATALOG)
    none: frozenset[str] = frozenset()

    # when: the first row is rejected for another reason and still counts
    first = validator.validate(source_row(2, external_order_id="A-7", sku="NOPE"), none)
    second = validator.validate(source_row(3, external_order_id=" A-7 "), none)
    other = validator.validate(source_row(4, external_order_id="A-8"), none)
    third = validator.validate(source_row(5, external_order_id="A-7"), none)

    # then
    assert problems(first) == [(RowErrorCode.unknown_sku, "sku", "NOPE")]
    assert problems(second) == [(RowErrorCode.duplicate_in_file, "external_order_id", " A-7 ")]
    assert other.status is RowStatus.accepted
    assert third.errors == [
        RowError(
            RowErrorCode.duplicate_in_file,
            "external_order_id",
            "A-7",
            "Order ID 'A-7' is already used in row 2 of this file; every order needs its own ID.",
        )
    ]


def test_an_order_id_accepted_in_an_earlier_group_order_is_a_duplicate() -> None:
    # given
    validator = RowValidator(catalog=CATALOG)

    # when
    result = validator.validate(source_row(external_order_id="OLD-1"), {"OLD-1", "OLD-2"})

    # then
    assert problems(result) == [(RowErrorCode.duplicate_order, "external_order_id", "OLD-1")]


def test_a_malformed_row_has_one_error_and_its_id_is_not_remembered() -> None:
    # given
    validator = RowValidator(catalog=CATALOG)
    broken = SourceRow(
        source_row=4,
        cells=('A-1,"Jane,Main St',),
        values=dict.fromkeys(CANONICAL_COLUMNS, ""),
        read_error="A quoted value is not closed.",
    )

    # when
    result = validator.validate(broken, frozenset())
    later = validator.validate(source_row(5, external_order_id="A-1"), frozenset())

    # then
    assert result == RowResult(
        source_row=4,
        status=RowStatus.rejected,
        cells=('A-1,"Jane,Main St',),
        normalized=dict.fromkeys(CANONICAL_COLUMNS),
        errors=[
            RowError(
                RowErrorCode.malformed_row,
                "row",
                'A-1,"Jane,Main St',
                "A quoted value is not closed.",
            )
        ],
    )
    assert later.status is RowStatus.accepted


def test_the_date_order_must_be_dmy_or_mdy() -> None:
    # when / then
    with pytest.raises(ValueError, match="date_order"):
        RowValidator(catalog=CATALOG, date_order="YMD")


@pytest.mark.parametrize(
    ("text", "date_order", "expected"),
    [
        ("2026-03-31", "DMY", "2026-03-31"),
        ("2026-3-5", "MDY", "2026-03-05"),
        ("2026/03/31", "DMY", "2026-03-31"),
        ("31.03.2026", "MDY", "2026-03-31"),
        ("03/04/2026", "DMY", "2026-04-03"),
        ("03/04/2026", "MDY", "2026-03-04"),
        ("31/12/2026", "MDY", "2026-12-31"),
        ("12/31/2026", "DMY", "2026-12-31"),
        ("12-31-2026", "DMY", "2026-12-31"),
        ("3 Apr 2026", "MDY", "2026-04-03"),
        ("3. April 2026", "DMY", "2026-04-03"),
        ("Apr 3, 2026", "DMY", "2026-04-03"),
        ("September 3rd, 2026", "DMY", "2026-09-03"),
        ("Sept 3 2026", "DMY", "2026-09-03"),
        ("2026-03-31T23:30:00+02:00", "DMY", "2026-03-31"),
        ("2026-03-31T14:30:00Z", "DMY", "2026-03-31"),
        ("2026-03-31 14:30", "DMY", "2026-03-31"),
        ("2026-03-31 14:30:05.123", "DMY", "2026-03-31"),
    ],
)
def test_dates_are_read_in_every_accepted_form(text: str, date_order: str, expected: str) -> None:
    # when
    result = check(date_order, order_date=text)

    # then
    assert result.errors == []
    assert result.normalized["order_date"] == expected


@pytest.mark.parametrize(
    "text",
    [
        "31.02.2026",
        "2026-13-01",
        "32/01/2026",
        "03/04/26",
        "3.4.26",
        "26-03-31",
        "3 Foo 2026",
        "yesterday",
        "2026-03-31T25:00",
        "20260331",
    ],
)
def test_other_dates_are_invalid(text: str) -> None:
    # when
    result = check(order_date=text)

    # then
    assert problems(result) == [(RowErrorCode.invalid_date, "order_date", text)]


@pytest.mark.parametrize(
    ("phone", "country", "expected"),
    [
        ("030 1234567", "DE", "+49301234567"),
        ("0049 30 1234567", "DE", "+49301234567"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("(416) 555-0199", "US", "+14165550199"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("020 123 4567", "NL", "+31201234567"),
        ("044 668 18 00", "CH", "+41446681800"),
        ("02 1234567", "IT", "+39021234567"),
        ("91 123 45 67", "ES", "+34911234567"),
        ("(02) 9876 5432", "AU", "+61298765432"),
        ("03-1234-5678", "JP", "+81312345678"),
        ("+44 20 7946 0958", "DE", "+442079460958"),
    ],
)
def test_phone_numbers_are_written_in_e164(phone: str, country: str, expected: str) -> None:
    # when
    result = check(phone=phone, country=country)

    # then: the phone is fine, whatever the postal code makes of the row
    assert result.normalized["phone"] == expected
    assert RowErrorCode.invalid_phone not in [error.code for error in result.errors]


@settings(max_examples=100, database=None)
@given(
    region=st.sampled_from(["DE", "GB", "US", "FR", "NL", "IT", "CH", "AU", "JP", "BR", "IN"]),
    kind=st.sampled_from(
        [phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE]
    ),
    international=st.booleans(),
    separators=st.lists(st.sampled_from([" ", "-", ".", "/", "(", ")", ""]), min_size=20),
)
def test_dropping_separators_before_parsing_changes_no_phone_number(
    region: str,
    kind: int,
    international: bool,
    separators: list[str],
) -> None:
    # given: a valid number of the region, with separators wherever they fall
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    style = phonenumbers.PhoneNumberFormat
    digits = phonenumbers.format_number(example, style.E164 if international else style.NATIONAL)
    text = "".join(
        character + separator for character, separator in zip(digits, separators, strict=False)
    )
    number = phonenumbers.parse(text, region)

    # when
    ours = normalize_phone(text, region)

    # then
    expected = phonenumbers.format_number(number, style.E164)
    assert ours == (expected if phonenumbers.is_valid_number(number) else None)


@pytest.mark.parametrize("phone", ["12345", "+49 30", "call me", "+999 123 456"])
def test_numbers_that_are_not_valid_are_invalid_phones(phone: str) -> None:
    # when
    result = check(phone=phone)

    # then
    assert problems(result) == [(RowErrorCode.invalid_phone, "phone", phone)]


def test_without_a_known_country_only_international_numbers_are_checked() -> None:
    # when
    national = check(country="Atlantis", phone="030 1234567")
    international = check(country="Atlantis", phone="+49 30 1234567")
    bad_international = check(country="", phone="+49 30")

    # then
    assert problems(national) == [(RowErrorCode.invalid_country, "country", "Atlantis")]
    assert national.normalized["phone"] == "030 1234567"
    assert international.normalized["phone"] == "+49301234567"
    assert problems(bad_international) == [
        (RowErrorCode.invalid_phone, "phone", "+49 30"),
        (RowErrorCode.missing_value, "country", ""),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("DE", "DE"),
        ("de", "DE"),
        ("DEU", "DE"),
        ("276", "DE"),
        ("Germany", "DE"),
        (" deutschland ", "DE"),
        ("United Kingdom", "GB"),
        ("UK", "GB"),
        ("U.K.", "GB"),
        ("Great Britain", "GB"),
        ("England", "GB"),
        ("USA", "US"),
        ("U.S.A.", "US"),
        ("United States", "US"),
        ("United States of America", "US"),
        ("America", "US"),
        ("España", "ES"),
        ("Österreich", "AT"),
        ("Schweiz", "CH"),
        ("Suisse", "CH"),
        ("Svizzera", "CH"),
        ("Italia", "IT"),
        ("Nederland", "NL"),
        ("The Netherlands", "NL"),
        ("Czechia", "CZ"),
        ("Czech Republic", "CZ"),
        ("Turkey", "TR"),
        ("Türkiye", "TR"),
    ],
)
def test_countries_are_read_from_codes_names_and_aliases(text: str, expected: str) -> None:
    # when
    result = check(country=text)

    # then: the country is fine, whatever the postal code makes of the row
    assert result.normalized["country"] == expected
    assert RowErrorCode.invalid_country not in [error.code for error in result.errors]


@pytest.mark.parametrize("text", ["Atlantis", "XX", "Europe", "D"])
def test_unknown_countries_are_invalid_and_hide_the_postal_code_check(text: str) -> None:
    # when
    result = check(country=text, phone="", postal_code="?")

    # then
    assert problems(result) == [(RowErrorCode.invalid_country, "country", text)]
    assert result.normalized["postal_code"] == "?"


@pytest.mark.parametrize(
    ("country", "text", "expected"),
    [
        ("US", "02134", "02134"),
        ("US", "12345-6789", "12345-6789"),
        ("US", "123456789", "12345-6789"),
        ("CA", "k1a0b1", "K1A 0B1"),
        ("GB", "sw1a1aa", "SW1A 1AA"),
        ("GB", "M1 1AE", "M1 1AE"),
        ("GB", "ec1a-1bb", "EC1A 1BB"),
        ("DE", "10115", "10115"),
        ("FR", "75008", "75008"),
        ("NL", "1012ab", "1012 AB"),
        ("BE", "1000", "1000"),
        ("AT", "1010", "1010"),
        ("CH", "8001", "8001"),
        ("IT", "00184", "00184"),
        ("ES", "28013", "28013"),
        ("PL", "00950", "00-950"),
        ("SE", "11455", "114 55"),
        ("DK", "1050", "1050"),
        ("NO", "0150", "0150"),
        ("IE", "d02x285", "D02 X285"),
        ("AU", "2000", "2000"),
        ("JP", "1000001", "100-0001"),
        ("BR", "01310-100", "01310-100"),
        ("KE", "ab 12", "AB 12"),
    ],
)
def test_postal_codes_are_checked_and_written_the_countrys_way(
    country: str, text: str, expected: str
) -> None:
    # when
    result = check(country=country, postal_code=text, phone="")

    # then
    assert result.errors == []
    assert result.normalized["postal_code"] == expected


@pytest.mark.parametrize(
    ("country", "text"),
    [
        ("US", "1234"),
        ("GB", "12345"),
        ("CA", "123456"),
        ("NL", "0123 AB"),
        ("DE", "1011"),
        ("ES", "99000"),
        ("IE", "D02"),
        ("BR", "1"),
        ("BR", "12345678901"),
        ("BR", "#123"),
    ],
)
def test_postal_codes_of_the_wrong_shape_are_invalid(country: str, text: str) -> None:
    # when
    result = check(country=country, postal_code=text, phone="")

    # then
    assert problems(result) == [(RowErrorCode.invalid_postal_code, "postal_code", text)]


def test_a_us_zip_code_that_lost_its_leading_zero_says_so() -> None:
    # when
    result = check(country="US", postal_code="2134", phone="")

    # then
    assert result.errors[0].message == (
        "'2134' is not a postal code of United States: expected 5 digits or ZIP+4, for "
        "example 12345 or 12345-6789. A spreadsheet may have dropped a leading zero; "
        "format the column as text."
    )


@pytest.mark.parametrize(
    ("text", "expected"), [("3", 3), (" 3 ", 3), ("3.0", 3), ("007", 7), ("1000000", 1_000_000)]
)
def test_quantities_are_positive_whole_numbers(text: str, expected: int) -> None:
    # when
    result = check(quantity=text)

    # then
    assert result.normalized["quantity"] == expected


@pytest.mark.parametrize("text", ["0", "-1", "2.5", "abc", "1000001", "1,000", "3.", "+3"])
def test_other_quantities_are_invalid(text: str) -> None:
    # when
    result = check(quantity=text)

    # then
    assert problems(result) == [(RowErrorCode.invalid_quantity, "quantity", text)]


@pytest.mark.parametrize(
    ("text", "known"), [("MUG-1", True), ("  Cap-Blue ", True), ("cap-blue", False)]
)
def test_skus_match_the_catalog_exactly_after_trimming(text: str, known: bool) -> None:
    # when
    result = check(sku=text)

    # then
    assert (result.errors == []) is known


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Jane.Doe@Example.COM", "Jane.Doe@example.com"),
        ("jane+gifts@mail.example.co.uk", "jane+gifts@mail.example.co.uk"),
        ("jürgen@bücher.de", "jürgen@bücher.de"),
        ("jane@xn--bcher-kva.de", "jane@bücher.de"),
    ],
)
def test_email_addresses_are_normalized(text: str, expected: str) -> None:
    # when / then
    assert normalize_email(text) == (expected, "")


@pytest.mark.parametrize(
    "text",
    ["jane", "jane@", "jane@example", "jane@@example.com", "ja ne@example.com", "a@b.test"],
)
def test_email_addresses_with_bad_syntax_are_invalid(text: str) -> None:
    # when
    result = check(email=text)

    # then
    assert problems(result) == [(RowErrorCode.invalid_email, "email", text)]


@settings(max_examples=200, database=None)
@given(
    st.from_regex(
        r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,70}@[A-Za-z0-9.-]{1,70}\.[A-Za-z0-9-]{1,10}",
        fullmatch=True,
    )
)
def test_the_quick_email_check_agrees_with_email_validator(text: str) -> None:
    # when
    ours = normalize_email(text)[0]
    try:
        theirs: str | None = email_validator.validate_email(
            text, check_deliverability=False
        ).normalized
    except email_validator.EmailNotValidError:
        theirs = None

    # then
    assert ours == theirs


# Files written at random, read back and validated

CELL_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(list('",;\t|\r\n "\'é€ü')),
        st.characters(exclude_categories=("Cs", "Cc")),
    ),
    max_size=12,
)


def quoted(cell: str, delimiter: str) -> bool:
    """Whether csv.writer puts ``cell`` in quotes."""
    return any(special in cell for special in (delimiter, '"', "\r", "\n"))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("random-files")


@settings(
    max_examples=200,
    deadline=None,
    database=None,
)
@given(
    rows=st.lists(st.lists(CELL_TEXT, min_size=14, max_size=14), max_size=15),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
)
def test_random_files_lose_no_row_and_every_row_gets_one_result(
    workdir: Path, rows: list[list[str]], delimiter: str, encoding: str
) -> None:
    # given
    path = workdir / "orders.csv"
    with path.open("w", encoding=encoding, newline="") as stream:
        writer = csv.writer(stream, delimiter=delimiter)
        writer.writerow(CANONICAL_COLUMNS)
        writer.writerows(rows)
    written = [row for row in rows if any(cell.strip() for cell in row)]

    # when
    if not written:
        with pytest.raises(FileError):
            open_source(path)
        return
    _, source_rows = open_source(path)
    read_rows = list(source_rows)
    validator = RowValidator(catalog=CATALOG)
    results = [validator.validate(row, frozenset()) for row in read_rows]

    # then: spaces between a delimiter and an unquoted value are dropped by design
    assert [row.cells for row in read_rows] == [
        tuple(cell if quoted(cell, delimiter) else cell.lstrip(" ") for cell in row)
        for row in written
    ]
    assert all(row.read_error is None for row in read_rows)
    assert [result.source_row for result in results] == [row.source_row for row in read_rows]
    accepted = sum(result.status is RowStatus.accepted for result in results)
    rejected = sum(result.status is RowStatus.rejected for result in results)
    assert accepted + rejected == len(written)


def test_the_docs_list_every_row_error_code() -> None:
    # given
    pages = [DOCS / "uploading.md", DOCS / "uploading-columns.md"]
    docs = "\n".join(page.read_text(encoding="utf-8") for page in pages if page.exists())

    # then
    documented = set(re.findall(r"^\| `([a-z-]+)` \|", docs, flags=re.MULTILINE))
    assert {code.value for code in RowErrorCode} <= documented
