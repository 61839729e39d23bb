"""The pure rules of match review and merges (eprescribe/patients.py): why a profile is a
candidate, which contact points and preferences move, which merges are refused, and a merged
profile matching as its survivor."""

import datetime as dt

from eprescribe.patients import (
    ContactPoint,
    MatchKey,
    classify,
    compare,
    contacts_to_move,
    merge_refusal,
    preferences_move,
)

BORN = dt.date(1980, 1, 1)
KEY = MatchKey("testpatient", "alex", BORN, "F", "90000")


def test_compare_names_the_fields_that_agree_and_differ() -> None:
    other = MatchKey("testpatient", "alex", BORN, "M", "90210")
    why = compare(KEY, other)
    assert why.agree == ("last_name", "first_name", "date_of_birth")
    assert why.differ == ("gender", "postal_code")
    assert compare(KEY, KEY).differ == ()


def test_a_profile_standing_for_two_keys_is_one_exact_match() -> None:
    # a merged profile's key counts as its survivor's: the same ID twice is not ambiguous
    match = classify(KEY, [("p1", KEY), ("p1", KEY)])
    assert (match.kind, match.candidates) == ("exact", ("p1",))
    weak = classify(KEY, [("p1", MatchKey("testpatient", "alex", BORN, "M", "90000"))] * 2)
    assert (weak.kind, weak.candidates) == ("weak", ("p1",))


def test_an_address_the_survivor_has_stays_with_the_merged_profile() -> None:
    survivor = [ContactPoint("s1", "email", "a@example.net")]
    merged = [
        ContactPoint("m1", "email", "a@example.net"),
        ContactPoint("m2", "mobile", "+15555550100"),
        ContactPoint("m3", "email", "b@example.net"),
    ]
    assert contacts_to_move(survivor, merged) == (["m2", "m3"], ["m1"])
    assert contacts_to_move([], merged) == (["m1", "m2", "m3"], [])


def test_the_survivors_preferences_are_kept() -> None:
    assert preferences_move(survivor_has=False, merged_has=True) is True
    assert preferences_move(survivor_has=True, merged_has=True) is False
    assert preferences_move(survivor_has=False, merged_has=False) is False


def test_merge_refusals() -> None:
    assert merge_refusal("a", "a", None, None) == (
        "merge_self",
        "A profile cannot be merged into itself.",
    )
    assert merge_refusal("a", "b", None, "c")[0] == "already_merged"  # type: ignore[index]
    assert merge_refusal("a", "b", "c", None)[0] == "survivor_merged"  # type: ignore[index]
    assert merge_refusal("a", "b", None, None) is None
