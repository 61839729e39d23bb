import datetime as dt

from eprescribe.checks import ExpiryRules, Severity

from .helpers import RECEIVED, codes, context, finding


def test_fresh_prescription_is_clean() -> None:
    assert "RX_EXPIRED" not in codes(context(written_date="2025-01-15"))


def test_non_controlled_expires_after_a_year() -> None:
    assert "RX_EXPIRED" not in codes(context(written_date="2024-01-16"))
    found = finding(context(written_date="2024-01-10"), "RX_EXPIRED")
    assert found.severity is Severity.HARD_STOP
    assert found.evidence["valid_days"] == 365


def test_schedule_ii_expires_after_90_days_by_default() -> None:
    assert "RX_EXPIRED" in codes(context(controlled=True, written_date="2024-10-01"))
    assert "RX_EXPIRED" not in codes(context(controlled=True, written_date="2024-10-20"))


def test_state_override() -> None:
    rules = ExpiryRules(states={"HI": {"C48675": 7}})
    late = context(controlled=True, written_date="2025-01-01", state="HI", expiry=rules)
    assert finding(late, "RX_EXPIRED").evidence["state"] == "HI"
    assert "RX_EXPIRED" not in codes(
        context(controlled=True, written_date="2025-01-01", state="CA", expiry=rules)
    )


def test_written_in_the_future() -> None:
    ahead = context(written_date="2025-01-18", sent_time="2025-01-15T10:00:00Z")
    assert finding(ahead, "WRITTEN_DATE_IN_FUTURE").severity is Severity.WARNING
    postdated_c2 = context(controlled=True, written_date="2025-01-18")
    assert finding(postdated_c2, "WRITTEN_DATE_IN_FUTURE").severity is Severity.HARD_STOP


def test_next_calendar_day_within_time_zone_slack_is_not_future() -> None:
    late_evening = RECEIVED.replace(hour=23)
    ctx = context(written_date="2025-01-16", received=late_evening)
    assert "WRITTEN_DATE_IN_FUTURE" not in codes(ctx)
    assert late_evening + dt.timedelta(hours=14) > dt.datetime(2025, 1, 16, tzinfo=dt.UTC)


def test_expiry_rules_from_operator_configuration() -> None:
    rules = ExpiryRules.from_mapping(
        {"default": {"non-controlled": 300}, "states": {"hi": {"C-II": 7}}}
    )
    assert rules.days(None, "CA") == 300
    assert rules.days("C48675", "HI") == 7
    assert rules.days("C48675", "CA") == 90


def test_bad_expiry_configuration_is_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="unknown schedule"):
        ExpiryRules.from_mapping({"default": {"CII": 90}})
    with pytest.raises(ValueError, match="positive whole number"):
        ExpiryRules.from_mapping({"states": {"HI": {"C-II": -1}}})
