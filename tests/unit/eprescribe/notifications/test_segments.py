"""SMS length: GSM-7 160/153, UCS-2 70/67."""

from __future__ import annotations

import pytest

from eprescribe.notifications import SmsLength, sms_length


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", SmsLength("GSM-7", 0, 0)),
        ("a" * 160, SmsLength("GSM-7", 160, 1)),
        ("a" * 161, SmsLength("GSM-7", 161, 2)),
        ("a" * 306, SmsLength("GSM-7", 306, 2)),
        ("a" * 307, SmsLength("GSM-7", 307, 3)),
        # the extension table counts two septets
        ("€" * 80, SmsLength("GSM-7", 160, 1)),
        ("a" + "€" * 80, SmsLength("GSM-7", 161, 2)),
        # é, ñ, ü, ¿, ¡ are GSM-7; á, í, ó, ú are not
        ("¿Está lista? ¡Sí, mañana!", SmsLength("UCS-2", 25, 1)),
        ("ñ" * 160, SmsLength("GSM-7", 160, 1)),
        ("ó" * 70, SmsLength("UCS-2", 70, 1)),
        ("ó" * 71, SmsLength("UCS-2", 71, 2)),
        ("ó" * 134, SmsLength("UCS-2", 134, 2)),
        ("ó" * 135, SmsLength("UCS-2", 135, 3)),
        # an emoji is two UTF-16 units
        ("💊" * 35, SmsLength("UCS-2", 70, 1)),
    ],
)
def test_encoding_units_and_segments(text: str, expected: SmsLength) -> None:
    assert sms_length(text) == expected


def test_an_escape_pair_is_never_split_between_parts() -> None:
    # 152 septets, then a two-septet character: it does not fit in the first part's 153
    assert sms_length("a" * 152 + "€" + "a" * 10).segments == 2
    assert sms_length("a" * 152 + "€" + "a" * 152).segments == 3


def test_a_surrogate_pair_is_never_split_between_parts() -> None:
    assert sms_length("ó" * 66 + "💊" + "ó" * 66).segments == 3
