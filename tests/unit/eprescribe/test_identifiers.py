import pytest

from eprescribe.identifiers import luhn_valid, ncpdpid_valid, npi_valid


@pytest.mark.parametrize("npi", ["1234567893", "1111111112", "1000000004", "1987654328"])
def test_valid_npis(npi: str) -> None:
    assert npi_valid(npi)


@pytest.mark.parametrize(
    "npi", ["1234567898", "123456789", "12345678930", "3234567893", "12345678a3", ""]
)
def test_invalid_npis(npi: str) -> None:
    assert not npi_valid(npi)


def test_luhn_rejects_non_digits() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("7992739871x")
    assert not luhn_valid("7992739871²")  # str.isdigit() takes it, int() does not
    assert not luhn_valid("799273987\u0661\u0663")  # Arabic-Indic digits are not NPI digits


def test_ncpdpid_is_seven_digits() -> None:
    assert ncpdpid_valid("1234567")
    assert not ncpdpid_valid("123456")
    assert not ncpdpid_valid("12345678")
    assert not ncpdpid_valid("123456a")
