"""Normalizing and checking one order row: every error of a row at once, fast.

``RowValidator`` is made once per uploaded file, because duplicates inside the file are
only visible across rows. Its decisions:

* Every text value is trimmed and put in Unicode NFC; names, address lines, city and
  region also have runs of whitespace (line breaks included) collapsed to one space.
* A value over its length limit is reported as too long and not checked further.
* The country decides how the phone number and the postal code are read. When the
  country is missing or unknown, the postal code is not checked (the country error is
  the one to fix) and a phone number is checked only if it starts with "+".
* SKUs match the catalog exactly after trimming: case counts, as SKUs are identifiers.
* An order ID counts as seen in the file from its first row on, whatever that row's
  status: the person fixes and uploads both rows again, so both must be told.
* Two-digit years are rejected: "03/04/05" has too many readings to guess.
"""

from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from collections.abc import Container, Mapping

import email_validator
import phonenumbers
import pycountry

from group_orders.services.ingest.model import (
    CANONICAL_COLUMNS,
    REQUIRED_COLUMNS,
    RowError,
    RowErrorCode,
    RowResult,
    RowStatus,
    SourceRow,
)

MAX_LENGTHS: dict[str, int] = {
    "external_order_id": 100,
    "order_date": 50,
    "recipient_name": 200,
    "email": 320,
    "phone": 50,
    "address_line1": 200,
    "address_line2": 200,
    "city": 100,
    "region": 100,
    "postal_code": 20,
    "country": 100,
    "sku": 100,
    "quantity": 20,
    "notes": 2000,
}
MAX_QUANTITY = 1_000_000
DATE_ORDERS = ("DMY", "MDY")

# How a column is named in messages.
LABELS: dict[str, str] = {
    "external_order_id": "Order ID",
    "order_date": "Order date",
    "recipient_name": "Recipient name",
    "email": "Email",
    "phone": "Phone",
    "address_line1": "Address line 1",
    "address_line2": "Address line 2",
    "city": "City",
    "region": "Region",
    "postal_code": "Postal code",
    "country": "Country",
    "sku": "SKU",
    "quantity": "Quantity",
    "notes": "Notes",
}

_REQUIRED = frozenset(REQUIRED_COLUMNS)
_COLLAPSED = frozenset(("recipient_name", "address_line1", "address_line2", "city", "region"))
# (column, collapse whitespace, maximum length, required), looked up once, not per row
_CLEANING = tuple(
    (column, column in _COLLAPSED, MAX_LENGTHS[column], column in _REQUIRED)
    for column in CANONICAL_COLUMNS
)
_COLUMN_ORDER = {column: index for index, column in enumerate((*CANONICAL_COLUMNS, "row"))}

# Native and everyday names that pycountry's English names and codes do not cover.
# Keys are in the form ``_country_key`` gives.
COUNTRY_ALIASES: dict[str, str] = {
    "deutschland": "DE",
    "españa": "ES",
    "espana": "ES",
    "österreich": "AT",
    "oesterreich": "AT",
    "schweiz": "CH",
    "suisse": "CH",
    "svizzera": "CH",
    "svizra": "CH",
    "italia": "IT",
    "nederland": "NL",
    "the netherlands": "NL",
    "holland": "NL",
    "belgië": "BE",
    "belgie": "BE",
    "belgique": "BE",
    "belgien": "BE",
    "frankreich": "FR",
    "luxemburg": "LU",
    "polska": "PL",
    "sverige": "SE",
    "danmark": "DK",
    "norge": "NO",
    "suomi": "FI",
    "éire": "IE",
    "eire": "IE",
    "uk": "GB",
    "great britain": "GB",
    "britain": "GB",
    "england": "GB",
    "scotland": "GB",
    "wales": "GB",
    "northern ireland": "GB",
    "usa": "US",
    "united states of america": "US",
    "america": "US",
    "russia": "RU",
    "turkey": "TR",
    "ivory coast": "CI",
    "macedonia": "MK",
    "cape verde": "CV",
    "swaziland": "SZ",
    "burma": "MM",
    "vatican": "VA",
    "brunei": "BN",
    "palestine": "PS",
    "macau": "MO",
}

# Postal codes are compared without spaces and dashes, then written in the country's
# usual form: (pattern on the compact form, separator between groups, what is expected).
_POSTAL_FORMATS: dict[str, tuple[re.Pattern[str], str, str]] = {
    code: (re.compile(pattern, re.ASCII), separator, expected)
    for code, pattern, separator, expected in (
        ("US", r"(\d{5})(\d{4})?", "-", "5 digits or ZIP+4, for example 12345 or 12345-6789"),
        (
            "CA",
            r"([ABCEGHJ-NPRSTVXY]\d[ABCEGHJ-NPRSTV-Z])(\d[ABCEGHJ-NPRSTV-Z]\d)",
            " ",
            "letter digit letter, digit letter digit, for example K1A 0B1",
        ),
        (
            "GB",
            r"([A-Z]{1,2}\d[A-Z\d]?|GIR)(\d[A-Z]{2})",
            " ",
            "a UK postcode, for example SW1A 1AA",
        ),
        ("DE", r"(\d{5})", "", "5 digits, for example 10115"),
        ("FR", r"(\d{5})", "", "5 digits, for example 75008"),
        ("IT", r"(\d{5})", "", "5 digits, for example 00184"),
        ("ES", r"((?:0[1-9]|[1-4]\d|5[0-2])\d{3})", "", "5 digits, for example 28013"),
        ("FI", r"(\d{5})", "", "5 digits, for example 00100"),
        ("NL", r"([1-9]\d{3})([A-Z]{2})", " ", "4 digits and 2 letters, for example 1012 AB"),
        ("BE", r"([1-9]\d{3})", "", "4 digits, for example 1000"),
        ("AT", r"([1-9]\d{3})", "", "4 digits, for example 1010"),
        ("CH", r"([1-9]\d{3})", "", "4 digits, for example 8001"),
        ("LU", r"(\d{4})", "", "4 digits, for example 1009"),
        ("DK", r"(\d{4})", "", "4 digits, for example 1050"),
        ("NO", r"(\d{4})", "", "4 digits, for example 0150"),
        ("AU", r"(\d{4})", "", "4 digits, for example 2000"),
        ("PL", r"(\d{2})(\d{3})", "-", "5 digits as 00-000, for example 00-950"),
        ("SE", r"([1-9]\d{2})(\d{2})", " ", "5 digits as 000 00, for example 114 55"),
        ("CZ", r"([1-7]\d{2})(\d{2})", " ", "5 digits as 000 00, for example 110 00"),
        ("PT", r"([1-9]\d{3})(\d{3})", "-", "7 digits as 0000-000, for example 1000-001"),
        ("JP", r"(\d{3})(\d{4})", "-", "7 digits as 000-0000, for example 100-0001"),
        (
            "IE",
            r"([AC-FHKNPRTV-Y]\d{2}|D6W)([0-9AC-FHKNPRTV-Y]{4})",
            " ",
            "an Eircode, for example D02 X285",
        ),
    )
}
_FIVE_DIGIT_COUNTRIES = frozenset(("US", "DE", "FR", "IT", "ES", "FI"))
_OTHER_POSTAL_CODE = re.compile(r"[A-Z0-9][A-Z0-9 -]{0,8}[A-Z0-9]")
_COMPACT_POSTAL = str.maketrans("", "", " -")

_PLAIN_PHONE = re.compile(r"\+?[0-9 ()./-]+")
_PHONE_SEPARATORS = str.maketrans("", "", " ()./-")

_QUANTITY = re.compile(r"(\d+)(?:\.0+)?")

_ISO_DATE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
_ISO_DATETIME_START = re.compile(r"\d{4}-\d{2}-\d{2}[T ]")
_YEAR_FIRST_SLASHED = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")
_SLASHED = re.compile(r"(\d{1,2})[/-](\d{1,2})[/-](\d{4})")
_DAY_MONTH_NAME = re.compile(r"(\d{1,2})\.?\s+([^\W\d_]{3,9})\.?,?\s+(\d{4})")
_MONTH_NAME_DAY = re.compile(r"([^\W\d_]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})")
_TWO_DIGIT_YEAR = re.compile(r"\d{1,2}[./-]\d{1,2}[./-]\d{2}")
_MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
_MONTHS = {
    name: number
    for number, full_name in enumerate(_MONTH_NAMES, start=1)
    for name in (full_name, full_name[:3])
} | {"sept": 9}

# Most addresses are plain ASCII; those are checked here with the same rules
# email-validator applies, at a tenth of its cost. Anything else goes to email-validator.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_SIMPLE_EMAIL = re.compile(
    rf"({_ATEXT}+(?:\.{_ATEXT}+)*)@((?:[A-Za-z0-9](?:[A-Za-z0-9-]{{0,61}}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63})"
)
_SPECIAL_USE_DOMAINS = tuple(email_validator.SPECIAL_USE_DOMAIN_NAMES)


class RowValidator:
    """Checks and normalizes the rows of one uploaded file, in file order.

    ``catalog`` holds the SKUs that may be ordered. ``date_order`` ("DMY" or "MDY")
    settles dates such as 03/04/2026 whose day and month could be swapped; a date like
    31/12/2026 is read the only way it can be, whatever the setting.
    """

    def __init__(self, *, catalog: Container[str], date_order: str = "DMY") -> None:
        if date_order not in DATE_ORDERS:
            raise ValueError(f"date_order must be one of {DATE_ORDERS}, not {date_order!r}")
        self._catalog = catalog
        self._date_order = date_order
        # external_order_id -> the source_row where it first appeared
        self._seen: dict[str, int] = {}

    def forget_seen(self) -> None:
        """Drop the order IDs remembered so far. A caller that keeps them elsewhere (the
        job, which stores every row) passes them back as ``earlier_in_file`` instead, so
        memory does not grow with the file."""
        self._seen.clear()

    def validate(
        self,
        row: SourceRow,
        previously_accepted: Container[str],
        earlier_in_file: Mapping[str, int] | None = None,
    ) -> RowResult:
        """Normalize ``row`` and collect all its errors.

        ``previously_accepted`` holds the client's order IDs accepted in earlier group
        orders; ``earlier_in_file`` maps order IDs of this file's forgotten rows to the row
        where each first appeared. The row's order ID is remembered for the duplicate
        check of later rows.
        """
        if row.read_error is not None:
            return self._malformed(row)
        raw = row.values
        errors: list[RowError] = []
        normalized: dict[str, str | int | None] = {}
        # The cleaned values still to be checked: "" when empty or too long.
        text: dict[str, str] = {}
        for column, collapse, limit, required in _CLEANING:
            value = raw.get(column, "").strip()
            if value:
                if not value.isascii():
                    value = unicodedata.normalize("NFC", value)
                if collapse:
                    value = " ".join(value.split())
                normalized[column] = value
                if len(value) > limit:
                    errors.append(_too_long(column, raw[column], value))
                    value = ""
            else:
                normalized[column] = None
                if required:
                    errors.append(_missing(column, raw.get(column, "")))
            text[column] = value

        country = None
        if value := text["country"]:
            country = country_code(value)
            if country is None:
                errors.append(_invalid_country(raw["country"]))
            else:
                normalized["country"] = country

        if value := text["order_date"]:
            parsed, problem = parse_date(value, date_order=self._date_order)
            if parsed is None:
                errors.append(_error(RowErrorCode.invalid_date, "order_date", raw, problem))
            else:
                normalized["order_date"] = parsed

        if value := text["phone"]:
            if country is not None or value.startswith("+"):
                phone = normalize_phone(value, country)
                if phone is None:
                    errors.append(_invalid_phone(raw["phone"], country))
                else:
                    normalized["phone"] = phone

        if value := text["email"]:
            email, problem = normalize_email(value)
            if email is None:
                errors.append(_error(RowErrorCode.invalid_email, "email", raw, problem))
            else:
                normalized["email"] = email

        if (value := text["postal_code"]) and country is not None:
            postal, problem = normalize_postal_code(value, country)
            if postal is None:
                errors.append(_error(RowErrorCode.invalid_postal_code, "postal_code", raw, problem))
            else:
                normalized["postal_code"] = postal

        if value := text["quantity"]:
            quantity = parse_quantity(value)
            if quantity is None:
                errors.append(_invalid_quantity(raw["quantity"]))
            else:
                normalized["quantity"] = quantity

        if (value := text["sku"]) and value not in self._catalog:
            errors.append(_unknown_sku(raw["sku"]))

        if value := text["external_order_id"]:
            first_row = earlier_in_file.get(value) if earlier_in_file else None
            if first_row is None:
                first_row = self._seen.setdefault(value, row.source_row)
            if first_row != row.source_row:
                errors.append(_duplicate_in_file(raw["external_order_id"], first_row))
            if value in previously_accepted:
                errors.append(_duplicate_order(raw["external_order_id"]))

        if len(errors) > 1:
            errors.sort(key=lambda error: _COLUMN_ORDER[error.field])
        return RowResult(
            source_row=row.source_row,
            status=RowStatus.rejected if errors else RowStatus.accepted,
            cells=row.cells,
            normalized=normalized,
            errors=errors,
        )

    def _malformed(self, row: SourceRow) -> RowResult:
        # A row whose cells are unreliable gets one error: its other checks would only
        # describe the misreading. Its ID is not remembered for the same reason.
        value = row.cells[0] if len(row.cells) == 1 else ""
        message = row.read_error or "The row can't be read."
        return RowResult(
            source_row=row.source_row,
            status=RowStatus.rejected,
            cells=row.cells,
            normalized={
                column: row.values.get(column, "").strip() or None for column in CANONICAL_COLUMNS
            },
            errors=[RowError(RowErrorCode.malformed_row, "row", value, message)],
        )


def _country_key(text: str) -> str:
    return " ".join(text.casefold().replace(".", "").split())


@functools.lru_cache(maxsize=1024)
def country_code(text: str) -> str | None:
    """The ISO 3166 alpha-2 code for a country code (alpha-2, alpha-3), name or alias."""
    key = _country_key(text)
    alias = COUNTRY_ALIASES.get(key)
    if alias is not None:
        return alias
    for candidate in (text, key):
        try:
            return str(pycountry.countries.lookup(candidate).alpha_2)
        except LookupError:
            continue
    return None


@functools.lru_cache(maxsize=1024)
def country_name(code: str) -> str:
    """The English short name of an alpha-2 code, for messages."""
    country = pycountry.countries.get(alpha_2=code)
    return code if country is None else str(country.name)


def parse_date(text: str, *, date_order: str = "DMY") -> tuple[str | None, str]:
    """``(ISO date, "")`` for a date in one of the accepted forms, else ``(None, why)``."""
    if match := _ISO_DATE.fullmatch(text):
        year, month, day = match.groups()
    elif match := _DOTTED.fullmatch(text):
        day, month, year = match.groups()
    elif match := _SLASHED.fullmatch(text):
        first, second, year = match.groups()
        if int(first) > 12 or (int(second) <= 12 and date_order == "DMY"):
            day, month = first, second
        else:
            month, day = first, second
    elif match := _YEAR_FIRST_SLASHED.fullmatch(text):
        year, month, day = match.groups()
    elif _ISO_DATETIME_START.match(text):
        try:
            return datetime.datetime.fromisoformat(text).date().isoformat(), ""
        except ValueError:
            return None, _date_problem(text)
    elif (match := _DAY_MONTH_NAME.fullmatch(text)) and match[2].casefold() in _MONTHS:
        day, name, year = match.groups()
        month = str(_MONTHS[name.casefold()])
    elif (match := _MONTH_NAME_DAY.fullmatch(text)) and match[1].casefold() in _MONTHS:
        name, day, year = match.groups()
        month = str(_MONTHS[name.casefold()])
    elif _TWO_DIGIT_YEAR.fullmatch(text):
        return None, (
            f"'{text}' has a two-digit year, which could be read several ways. Write the "
            "year with four digits, as YYYY-MM-DD, for example 2026-03-31."
        )
    else:
        return None, _date_problem(text)
    try:
        return datetime.date(int(year), int(month), int(day)).isoformat(), ""
    except ValueError:
        return None, (
            f"'{text}' is not a day of the calendar: check the day and the month. "
            "Write dates as YYYY-MM-DD, for example 2026-03-31."
        )


def _date_problem(text: str) -> str:
    return (
        f"'{text}' is not a date in a form we read. Write it as YYYY-MM-DD, for example "
        "2026-03-31 (see docs/uploading.md for the other accepted forms)."
    )


# Parsing a number costs 20-30 µs, most of a row's time; files often repeat an office
# or switchboard number, so repeats are kept.
@functools.lru_cache(maxsize=4096)
def normalize_phone(text: str, country: str | None) -> str | None:
    """The number in E.164 form ("+4930123456"), or None if it is not a valid number.

    A number without a country code is read as a number of ``country``.
    """
    if _PLAIN_PHONE.fullmatch(text):
        # phonenumbers reads "030 1234567" and "0301234567" alike, but spaces and dashes
        # make its parse about a third slower; only digits and separators are dropped.
        text = text.translate(_PHONE_SEPARATORS)
    try:
        number = phonenumbers.parse(text, country)
    except phonenumbers.NumberParseException:
        return None
    # Checking against the row's own country first is the same answer for the usual
    # case at half the cost: is_valid_number tries every region of a shared calling code
    # (+1 has 25, +44 four). Numbers of other regions still get the full check.
    if not (
        (country is not None and phonenumbers.is_valid_number_for_region(number, country))
        or phonenumbers.is_valid_number(number)
    ):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


def normalize_email(text: str) -> tuple[str | None, str]:
    """``(normalized address, "")`` if the syntax is valid, else ``(None, why)``.

    Only the syntax is checked; nothing is looked up in DNS.
    """
    if match := _SIMPLE_EMAIL.fullmatch(text):
        local, domain = match.groups()
        domain = domain.lower()
        if (
            len(local) <= 64
            and len(text) <= 254
            and len(domain) <= 253
            and "--" not in domain
            and not any(
                domain == special or domain.endswith("." + special)
                for special in _SPECIAL_USE_DOMAINS
            )
        ):
            return f"{local}@{domain}", ""
    try:
        result = email_validator.validate_email(text, check_deliverability=False)
    except email_validator.EmailNotValidError as error:
        return None, f"'{text}' is not a valid email address: {error}"
    return result.normalized, ""


def normalize_postal_code(text: str, country: str) -> tuple[str | None, str]:
    """``(postal code in the country's usual form, "")``, else ``(None, why)``."""
    upper = text.upper()
    known = _POSTAL_FORMATS.get(country)
    if known is None:
        if _OTHER_POSTAL_CODE.fullmatch(upper):
            return upper, ""
        return None, (
            f"'{text}' is not a postal code: expected 2 to 10 letters, digits, spaces or dashes."
        )
    pattern, separator, expected = known
    compact = upper.translate(_COMPACT_POSTAL)
    if match := pattern.fullmatch(compact):
        return separator.join(group for group in match.groups() if group), ""
    problem = f"'{text}' is not a postal code of {country_name(country)}: expected {expected}."
    if country in _FIVE_DIGIT_COUNTRIES and len(compact) == 4 and compact.isdigit():
        problem += " A spreadsheet may have dropped a leading zero; format the column as text."
    return None, problem


def parse_quantity(text: str) -> int | None:
    """A whole number from 1 to ``MAX_QUANTITY`` ("3" or "3.0"), else None."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        return None
    quantity = int(match.group(1))
    return quantity if 1 <= quantity <= MAX_QUANTITY else None


def _error(code: RowErrorCode, column: str, raw: dict[str, str], message: str) -> RowError:
    return RowError(code, column, raw[column], message)


def _missing(column: str, raw: str) -> RowError:
    return RowError(
        RowErrorCode.missing_value,
        column,
        raw,
        f"{LABELS[column]} is empty; every order needs one.",
    )


def _too_long(column: str, raw: str, value: str) -> RowError:
    return RowError(
        RowErrorCode.value_too_long,
        column,
        raw,
        f"{LABELS[column]} has {len(value):,} characters; at most "
        f"{MAX_LENGTHS[column]:,} are allowed.",
    )


def _invalid_country(raw: str) -> RowError:
    return RowError(
        RowErrorCode.invalid_country,
        "country",
        raw,
        f"'{raw.strip()}' is not a country we know. Write a two-letter ISO code such as "
        "DE, GB or US, or the country's English name.",
    )


def _invalid_phone(raw: str, country: str | None) -> RowError:
    where = "" if country is None else f" in {country_name(country)}"
    return RowError(
        RowErrorCode.invalid_phone,
        "phone",
        raw,
        f"'{raw.strip()}' is not a valid phone number{where}. Write the whole number, "
        "best with its country code, for example +49 30 1234567.",
    )


def _invalid_quantity(raw: str) -> RowError:
    return RowError(
        RowErrorCode.invalid_quantity,
        "quantity",
        raw,
        f"'{raw.strip()}' is not a quantity: write a whole number from 1 to {MAX_QUANTITY:,}.",
    )


def _unknown_sku(raw: str) -> RowError:
    return RowError(
        RowErrorCode.unknown_sku,
        "sku",
        raw,
        f"SKU '{raw.strip()}' is not in the catalog. SKUs must match exactly, "
        "including upper and lower case.",
    )


def _duplicate_in_file(raw: str, first_row: int) -> RowError:
    return RowError(
        RowErrorCode.duplicate_in_file,
        "external_order_id",
        raw,
        f"Order ID '{raw.strip()}' is already used in row {first_row} of this file; "
        "every order needs its own ID.",
    )


def _duplicate_order(raw: str) -> RowError:
    return RowError(
        RowErrorCode.duplicate_order,
        "external_order_id",
        raw,
        f"Order ID '{raw.strip()}' was already accepted in an earlier group order; "
        "every order needs its own ID.",
    )


__all__ = [
    "COUNTRY_ALIASES",
    "DATE_ORDERS",
    "LABELS",
    "MAX_LENGTHS",
    "MAX_QUANTITY",
    "RowValidator",
    "country_code",
    "country_name",
    "normalize_email",
    "normalize_phone",
    "normalize_postal_code",
    "parse_date",
    "parse_quantity",
]
