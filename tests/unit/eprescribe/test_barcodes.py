import datetime as dt

import pytest

from eprescribe.dispensing.barcodes import (
    BarcodeError,
    Scan,
    gs1_check_digit,
    parse_scan,
    rx_barcode_text,
)

NDC10 = "5012345678"  # a 10-digit NDC as barcodes carry it (layout unknown)
GS = "\x1d"


def _check(body: str) -> str:
    """GS1 check digit, computed left to right (positions counted from the left, so the weights
    depend on the body's length) as an independent cross-check of the module's own."""
    odd_from_right = len(body) % 2
    total = sum(
        int(d) * (3 if (i % 2 == 0) == bool(odd_from_right) else 1) for i, d in enumerate(body)
    )
    return str(-total % 10)


def _with_check(body: str) -> str:
    return body + _check(body)


UPC = _with_check("3" + NDC10)
GTIN = _with_check("0" + "03" + NDC10)
CASE_GTIN = _with_check("5" + "03" + NDC10)  # indicator 5: a higher packaging level


def _wrong(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def _reason(text: str) -> str:
    with pytest.raises(BarcodeError) as caught:
        parse_scan(text)
    return caught.value.reason


def test_check_digit_matches_published_examples() -> None:
    assert _check("03600029145") == "2"  # the UPC-A 036000291452
    assert gs1_check_digit("03600029145") == 2
    assert gs1_check_digit("0031234567890") == int(_check("0031234567890"))


# UPC-A and EAN-13


@pytest.mark.parametrize(
    "text", [UPC, f"]E0{UPC}", f"0{UPC}", f"]E00{UPC}", f"  {UPC}\r\n", f"{UPC}\n"]
)
def test_upc_a_carries_the_ndc(text: str) -> None:
    scan = parse_scan(text)
    assert scan == Scan(kind="upc", ndc10=NDC10)


def test_ndc11_candidates_of_a_barcode_are_the_three_layouts() -> None:
    assert parse_scan(UPC).ndc11_candidates() == ("05012345678", "50123045678", "50123456708")


def test_upc_with_a_wrong_check_digit_is_refused() -> None:
    assert "check digit" in _reason(_wrong(UPC))
    assert "check digit" in _reason("0" + _wrong(UPC))


def test_upc_that_is_not_a_drug_code_is_refused() -> None:
    assert "not a drug code" in _reason("036000291452")


def test_ean13_of_another_country_is_refused() -> None:
    assert "not a US product code" in _reason(_with_check("400638133393"))


# GS1 element strings


def test_gtin_alone() -> None:
    assert parse_scan(GTIN) == Scan(kind="gs1", ndc10=NDC10, gtin=GTIN)
    assert parse_scan(CASE_GTIN).ndc10 == NDC10


def test_dscsa_datamatrix() -> None:
    text = f"]d201{GTIN}17280500102A7LOTX{GS}21SN00017Q9"
    assert parse_scan(text) == Scan(
        kind="gs1",
        ndc10=NDC10,
        gtin=GTIN,
        lot="2A7LOTX",
        expiry=dt.date(2028, 5, 31),
        serial="SN00017Q9",
    )


@pytest.mark.parametrize("separator", [GS, "<GS>", "{GS}", "^]", "\\x1d", "<gs>"])
def test_each_separator_a_scanner_may_send(separator: str) -> None:
    scan = parse_scan(f"01{GTIN}17270215{separator}10AB12C{separator}21X9Y8Z7\r\n")
    assert (scan.lot, scan.serial, scan.expiry) == ("AB12C", "X9Y8Z7", dt.date(2027, 2, 15))


@pytest.mark.parametrize("prefix", ["]d2", "]C1", "]Q3", "", GS])
def test_symbology_identifiers_and_a_leading_fnc1(prefix: str) -> None:
    assert parse_scan(f"{prefix}01{GTIN}10L1{GS}21S1").lot == "L1"


def test_fields_in_any_order() -> None:
    scan = parse_scan(f"21SER-1/2{GS}10LOT.9{GS}17290131 01{GTIN}".replace(" ", ""))
    assert (scan.gtin, scan.lot, scan.serial) == (GTIN, "LOT.9", "SER-1/2")
    assert scan.expiry == dt.date(2029, 1, 31)


def test_lot_last_needs_no_separator() -> None:
    scan = parse_scan(f"01{GTIN}17280229{GS}21A{GS}10ABC123def")
    assert (scan.lot, scan.expiry) == ("ABC123def", dt.date(2028, 2, 29))


def test_human_readable_form() -> None:
    scan = parse_scan(f"(01){GTIN}(17)280200(10)A(1)B(21)99 ")
    assert (scan.ndc10, scan.lot, scan.serial) == (NDC10, "A(1)B", "99")
    assert scan.expiry == dt.date(2028, 2, 29)  # day 00 of a leap February


def test_fields_of_known_length_are_skipped() -> None:
    text = f"01{GTIN}11250101{GS}15290101240REF-7{GS}10L7{GS}3103000500"
    assert parse_scan(text).lot == "L7"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"01{_wrong(GTIN)}10L1", "check digit"),
        (f"01{_with_check('0001234567890')}10L1", "not a US drug code"),
        (_with_check("0001234567890"), "not a US drug code"),
        (f"]d217280500{GS}10L1{GS}21S", "no product number"),
        (f"01{GTIN}17281300", "not a real date"),
        (f"01{GTIN}172805", "expiry date in the code should be 6 digits"),
        (f"01{GTIN}10{'A' * 21}", "longer than 20"),
        (f"01{GTIN}10LOT1[GS]21S1", "separator the hub does not know"),
        (f"01{GTIN}10{GS}21S1", "lot number in the code is empty"),
        (f"01{GTIN}10L1{GS}10L2", "twice"),
        (f"01{GTIN}89ABC", "cannot read"),
        (f"(01){GTIN}(89)ABC", "cannot read"),
        (f"]d201{GTIN[:-2]}", "should be 14 digits"),
    ],
)
def test_malformed_gs1_codes_are_refused(text: str, expected: str) -> None:
    assert expected in _reason(text)


# Typed NDCs


@pytest.mark.parametrize(
    ("text", "ndc10", "ndc11"),
    [
        ("0002-1433-80", "0002143380", "00002143380"),
        ("50123-456-78", "5012345678", "50123045678"),
        ("50123-4567-8", "5012345678", "50123456708"),
        ("50123-4567-89", None, "50123456789"),
        ("50123456789", None, "50123456789"),
    ],
)
def test_typed_ndc_with_its_layout(text: str, ndc10: str | None, ndc11: str) -> None:
    scan = parse_scan(text)
    assert scan == Scan(kind="ndc", ndc10=ndc10, ndc11=ndc11)
    assert scan.ndc11_candidates() == (ndc11,)


def test_typed_ndc_without_hyphens_is_ambiguous() -> None:
    assert parse_scan("0002143380").ndc11_candidates() == (
        "00002143380",
        "00021043380",
        "00021433800",
    )


# The hub's own label


@pytest.mark.parametrize("text", ["RX0001234", "rx0001234\r\n", "]C0RX0001234"])
def test_rx_label(text: str) -> None:
    scan = parse_scan(text)
    assert scan == Scan(kind="rx", rx_number="0001234")
    assert scan.ndc11_candidates() == ()


def test_rx_label_round_trip() -> None:
    for number in ("123456", "0001234", "1234567890"):
        assert parse_scan(rx_barcode_text(number)).rx_number == number


@pytest.mark.parametrize("number", ["12345", "12345678901", "12345a", ""])
def test_rx_barcode_text_refuses_other_numbers(number: str) -> None:
    with pytest.raises(BarcodeError):
        rx_barcode_text(number)


@pytest.mark.parametrize(
    "text",
    ["", " \r\n", "hello", "RX12345", "12345", "1234-5678", "RX0001234X", "0123456789012345x"],
)
def test_unknown_text_is_refused(text: str) -> None:
    assert _reason(text)


def test_upc_e_is_refused_with_advice() -> None:
    assert "UPC-E" in _reason("03456781")
