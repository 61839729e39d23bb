"""Value objects back from their JSON: ``from_json`` inverts ``to_json``, checks types and
runs the objects' own validation again."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from eprescribe.ncpdp import (
    Allergy,
    DateValue,
    MedicationPrescribed,
    NewRx,
    OrderDetails,
    Party,
    Patient,
    Prescriber,
    from_json,
    parse_message,
    to_json,
)
from tests.support.script_samples import FIXTURES, stored_samples

SAMPLES = stored_samples()


def newrx(name: str) -> tuple[NewRx, OrderDetails]:
    message = parse_message(SAMPLES[name])
    assert isinstance(message.body, NewRx)
    return message.body, OrderDetails.of(message.header, message.body)


def medication_json() -> dict[str, Any]:
    return to_json(newrx("newrx_full.xml")[0].medication)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_from_json_inverts_to_json(name: str) -> None:
    body, details = newrx(name)
    for value in (body.patient, body.prescriber, body.medication, details):
        assert from_json(type(value), to_json(value)) == value


def test_order_details_are_the_header_and_body_parts_besides_the_columns() -> None:
    message = parse_message((FIXTURES / "newrx_full.xml").read_bytes())
    assert isinstance(message.body, NewRx)
    details = OrderDetails.of(message.header, message.body)
    assert details.sender == message.header.from_
    assert details.sent_time == message.header.sent_time
    assert details.digital_signature == message.header.digital_signature
    assert details.allergies == message.body.allergies
    assert details.pharmacy == message.body.pharmacy


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_order_read_back_from_its_kept_parts_is_the_newrx_but_its_receipt_request(
    name: str,
) -> None:
    body, details = newrx(name)
    kept = [to_json(v) for v in (details, body.patient, body.prescriber, body.medication)]
    read = from_json(OrderDetails, kept[0]).newrx(
        from_json(Patient, kept[1]),
        from_json(Prescriber, kept[2]),
        from_json(MedicationPrescribed, kept[3]),
    )
    assert read == dataclasses.replace(body, return_receipt=None)


def test_a_tuple_of_value_objects() -> None:
    allergies = newrx("newrx_full.xml")[0].allergies
    assert len(allergies) == 2
    assert from_json(tuple[Allergy, ...], [to_json(a) for a in allergies]) == allergies


def test_wrong_types_are_refused_with_their_path() -> None:
    data = medication_json()
    data["days_supply"] = "30"
    with pytest.raises(ValueError, match=r"\$\.days_supply"):
        from_json(MedicationPrescribed, data)


def test_a_missing_required_field_is_refused() -> None:
    data = medication_json()
    del data["quantity"]
    with pytest.raises(ValueError, match="quantity"):
        from_json(MedicationPrescribed, data)


def test_validation_runs_again() -> None:
    with pytest.raises(ValueError, match="unknown party qualifier"):
        from_json(Party, {"qualifier": "X", "value": "1"})
    with pytest.raises(ValueError, match="aware and in UTC"):
        from_json(DateValue, {"date": "2025-01-15", "datetime": "2025-01-15T10:00:00+01:00"})
    human = {"kind": "human", "name": None, "gender": "F", "date_of_birth": None, "address": None}
    with pytest.raises(ValueError, match="human patient needs"):
        from_json(Patient, human)


def test_defaults_fill_missing_optional_keys_and_unknown_keys_are_ignored() -> None:
    data = medication_json()
    del data["prescriber_checked_rems"]
    data["added_later"] = 1
    medication = from_json(MedicationPrescribed, data)
    assert medication.prescriber_checked_rems is None
    assert medication.written_date == DateValue(
        dt.date(2025, 1, 14), dt.datetime(2025, 1, 14, 16, 45, tzinfo=dt.UTC)
    )
