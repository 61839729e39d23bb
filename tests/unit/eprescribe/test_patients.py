import datetime as dt

from eprescribe.patients import MatchKey, classify, normalise_name

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
