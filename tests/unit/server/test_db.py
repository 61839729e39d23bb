import dataclasses
import datetime as dt
import json
import types
import typing
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eprescribe.ncpdp import (
    Address,
    CommunicationNumber,
    DateValue,
    MedicationPrescribed,
    Name,
    NewRx,
    OrderDetails,
    Party,
    Patient,
    Prescriber,
    from_json,
    parse_message,
    to_json,
)
from eprescribe.ncpdp.types import COMMUNICATION_KINDS, PARTY_QUALIFIERS
from server.db import json_dumps
from tests.support.script_samples import FIXTURES, stored_samples

SAMPLES = stored_samples()


def test_json_columns_store_value_objects_as_the_domain_serialises_them() -> None:
    message = parse_message((FIXTURES / "newrx_full.xml").read_bytes())
    newrx = message.body
    for part in (newrx.patient, newrx.prescriber, newrx.medication, newrx.pharmacy,
                 message.header.digital_signature):  # fmt: skip
        assert json.loads(json_dumps(part)) == to_json(part)
    assert json.loads(json_dumps(newrx.allergies)) == [to_json(a) for a in newrx.allergies]


def stored(value: object) -> Any:
    """``value`` as a JSON column gives it back: written by the hub's encoder, read as JSON."""
    return json.loads(json_dumps(value))


def columns(document: bytes) -> list[object]:
    """The value objects the intake stores in a prescription's JSON columns."""
    message = parse_message(document)
    assert isinstance(message.body, NewRx)
    newrx = message.body
    details = OrderDetails.of(message.header, newrx)
    return [newrx.patient, newrx.prescriber, newrx.medication, details]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_stored_value_objects_read_back_equal(name: str) -> None:
    for value in columns(SAMPLES[name]):
        assert from_json(type(value), stored(value)) == value


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_order_details_are_stored_as_the_details_always_were(name: str) -> None:
    message = parse_message(SAMPLES[name])
    assert isinstance(message.body, NewRx)
    header, newrx = message.header, message.body
    written_before = {
        "sent_time": header.sent_time,
        "sender": header.from_,
        "digital_signature": header.digital_signature,
        "allergies": newrx.allergies,
        "no_known_allergies": newrx.no_known_allergies,
        "pharmacy": newrx.pharmacy,
        "urgency_indicator_code": newrx.urgency_indicator_code,
        "prohibit_renewal_request": newrx.prohibit_renewal_request,
    }
    added_since = {
        "facility": newrx.facility,
        "observation": newrx.observation,
        "supervisor": newrx.supervisor,
    }
    details = OrderDetails.of(header, newrx)
    # the keys always written come first, in their order; those added later follow
    assert json_dumps(details) == json_dumps(written_before | added_since)
    # details stored before the later keys existed read back with their defaults
    assert from_json(OrderDetails, stored(written_before)) == dataclasses.replace(
        details, **dict.fromkeys(added_since)
    )


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_stored_values_written_again_are_the_same_bytes(name: str) -> None:
    for value in columns(SAMPLES[name]):
        written = json_dumps(value)
        assert json_dumps(from_json(type(value), json.loads(written))) == written


# --- any value, not only the samples' ------------------------------------------------------

TEXT = st.text(max_size=40)
SOME_TEXT = st.text(min_size=1, max_size=40)
PRINTABLE = st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1, max_size=40)
UTC_TIMES = st.datetimes(timezones=st.just(dt.UTC))

#: types whose __post_init__ refuses most arbitrary field values
SPECIAL: dict[object, st.SearchStrategy[Any]] = {
    Party: st.builds(Party, st.none() | st.sampled_from(sorted(PARTY_QUALIFIERS)), PRINTABLE),
    Name: st.builds(Name, SOME_TEXT, st.none() | TEXT, st.none() | TEXT),
    Address: st.builds(Address, *[st.none() | SOME_TEXT] * 6),
    CommunicationNumber: st.builds(
        CommunicationNumber, st.sampled_from(COMMUNICATION_KINDS), SOME_TEXT, st.none() | TEXT
    ),
    DateValue: st.builds(DateValue, st.dates(), st.none() | UTC_TIMES),
    dt.datetime: UTC_TIMES,
}


def values(hint: Any) -> st.SearchStrategy[Any]:
    """Any valid value of a value object's field type, read from its annotations."""
    if hint in SPECIAL:
        return SPECIAL[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return objects(hint)
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(values(arg) for arg in args))
    if origin is tuple and args[-1] is Ellipsis:
        return st.lists(values(args[0]), max_size=3).map(tuple)
    if origin is tuple:
        return st.tuples(*(values(arg) for arg in args))
    if origin is typing.Literal:
        return st.sampled_from(args)
    simple: dict[Any, st.SearchStrategy[Any]] = {
        type(None): st.none(),
        str: TEXT,
        bool: st.booleans(),
        int: st.integers(-(2**63), 2**63 - 1),  # msgspec reads 64-bit integers
        Decimal: st.decimals(allow_nan=False, allow_infinity=False),
        dt.date: st.dates(),
    }
    return simple[hint]


def objects(cls: Any, **fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Instances of the dataclass ``cls``: ``fixed`` fields from the given strategies."""
    fields = typing.get_type_hints(cls)
    return st.builds(
        cls,
        **{name: fixed[name] if name in fixed else values(hint) for name, hint in fields.items()},
    )


HUMAN = objects(
    Patient,
    kind=st.just("human"),
    name=SPECIAL[Name],
    gender=TEXT,
    date_of_birth=SPECIAL[DateValue],
    address=SPECIAL[Address],
)
NONHUMAN = objects(Patient, kind=st.just("nonhuman"))
NON_VETERINARIAN = objects(
    Prescriber, kind=st.just("non_veterinarian"), npi=TEXT, address=SPECIAL[Address]
)
VETERINARIAN = objects(Prescriber, kind=st.just("veterinarian"))


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        HUMAN,
        NONHUMAN,
        NON_VETERINARIAN,
        VETERINARIAN,
        values(MedicationPrescribed),
        values(OrderDetails),
    )
)
def test_any_stored_value_object_reads_back_equal(value: Any) -> None:
    assert from_json(type(value), stored(value)) == value
