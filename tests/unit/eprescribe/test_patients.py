import datetime as dt
import operator
import string
import unicodedata

from hypothesis import assume, given
from hypothesis import strategies as st

from eprescribe.ncpdp import Address, DateValue, Name, Patient
from eprescribe.patients import NAME_KEY_MAX, MatchKey, classify, normalise_name, same_person

BORN = dt.date(1980, 1, 1)
KEY = MatchKey("testpatient", "alex", BORN, "F", "90000")


def test_names_are_normalised() -> None:
    assert normalise_name("O'Brien-Smith Jr.") == "obriensmith"
    assert normalise_name("JOSÉ") == normalise_name("jose")


def test_exact_match_links_to_the_one_profile() -> None:
    match = classify(KEY, [("p1", KEY)])
    assert (match.kind, match.candidates) == ("exact", ("p1",))


def test_no_profile_with_name_and_birth_date_is_new() -> None:
    other = MatchKey("testpatient", "alex", dt.date(1981, 1, 1), "F", "90000")
    assert classify(KEY, [("p1", other)]).kind == "new"
    assert classify(KEY, []).kind == "new"


def test_same_person_with_another_zip_or_gender_is_weak() -> None:
    moved = MatchKey("testpatient", "alex", BORN, "F", "10001")
    match = classify(KEY, [("p1", moved)])
    assert (match.kind, match.candidates, match.differences) == ("weak", ("p1",), ("postal_code",))
    other_gender = MatchKey("testpatient", "alex", BORN, "M", "90000")
    assert classify(KEY, [("p2", other_gender)]).differences == ("gender",)


def test_two_exact_profiles_are_ambiguous_never_merged() -> None:
    match = classify(KEY, [("p1", KEY), ("p2", KEY)])
    assert (match.kind, match.candidates) == ("ambiguous", ("p1", "p2"))


#: ㎯ (SQUARE RAD OVER S SQUARED) decomposes to "rad/s2" (with a division slash): a name
#: within the SCRIPT limit of 35 characters whose key would have four letters per character
EXPANDING = "\u33af" * 35


def test_a_name_that_expands_still_fits_its_column() -> None:
    assert len(normalise_name(EXPANDING)) <= NAME_KEY_MAX


def test_short_keys_are_the_letters_themselves() -> None:
    """Profiles stored before keys were bounded keep matching."""
    letters = "a" * NAME_KEY_MAX
    assert normalise_name(letters) == letters


#: any unicode, and long names (a random piece repeated) that reach past the bound
NAMES = st.text(max_size=100) | st.builds(
    operator.mul, st.text(min_size=1, max_size=8), st.integers(min_value=1, max_value=80)
)


@given(NAMES)
def test_a_key_never_exceeds_the_column(name: str) -> None:
    assert len(normalise_name(name)) <= NAME_KEY_MAX


@given(NAMES)
def test_equal_names_give_equal_keys(name: str) -> None:
    """The same name, however its accents are composed, gives one key."""
    key = normalise_name(name)
    assert normalise_name(unicodedata.normalize("NFC", name)) == key
    assert normalise_name(unicodedata.normalize("NFD", name)) == key


@given(st.text(alphabet=string.ascii_letters + " -'.", max_size=300))
def test_case_and_punctuation_do_not_change_a_key(name: str) -> None:
    assert (
        normalise_name(name.upper()) == normalise_name(f" {name.lower()}-") == normalise_name(name)
    )


@given(
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=300),
    st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=300),
)
def test_different_names_give_different_keys(first: str, second: str) -> None:
    """Long names are not cut to a common prefix: a match stays a match of the whole name."""
    assume(first != second)
    assert normalise_name(first) != normalise_name(second)


def test_names_differing_only_after_the_bound_differ() -> None:
    long = "b" * (2 * NAME_KEY_MAX)
    assert normalise_name(long + "x") != normalise_name(long + "y")
    assert normalise_name(EXPANDING) != normalise_name(EXPANDING[:-1])


def _person(last: str, first: str | None, born: str, kind: str = "human") -> Patient:
    return Patient(
        kind,  # type: ignore[arg-type]
        Name(last, first),
        "U" if kind == "human" else None,
        DateValue(dt.date.fromisoformat(born)),
        Address("1 Test Street", "Testville", "CA", "90000", "US") if kind == "human" else None,
    )


def test_an_answer_s_patient_is_the_one_asked_about_only_when_name_and_birth_agree() -> None:
    asked = _person("TESTPATIENT", "ALEX", "1980-01-01")
    assert same_person(asked, _person("Testpatiént", "alex", "1980-01-01"))
    assert not same_person(asked, _person("OTHER", "ALEX", "1980-01-01"))
    assert not same_person(asked, _person("TESTPATIENT", "SAM", "1980-01-01"))
    assert not same_person(asked, _person("TESTPATIENT", "ALEX", "1980-01-02"))
    assert not same_person(asked, _person("TESTPATIENT", "ALEX", "1980-01-01", "nonhuman"))
