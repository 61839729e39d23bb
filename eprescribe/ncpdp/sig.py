"""The ``Sig`` of a prescribed medication, free text and structured (NCPDP SCRIPT Standard 2017071).

The structured Sig is modelled only where public 2017071 samples confirm the element names:
``SigText``; ``Instruction`` (repeating, with ``MultipleInstructionModifier`` between them);
``Instruction/DoseAdministration`` with ``DoseDeliveryMethod``, ``Dosage`` (``DoseQuantity``,
``DoseUnitOfMeasure``, and for ranges ``DoseRangeModifier`` plus a second ``DoseQuantity``) and
``RouteOfAdministration``; ``Instruction/TimingAndDuration`` (repeating) with ``Frequency``
(``FrequencyNumericValue``, ``FrequencyUnits``), ``Interval`` (``IntervalNumericValue``,
``IntervalUnits``) and ``Duration`` (``DurationNumericValue``, ``DurationText``);
``Instruction/IndicationForUse`` with ``IndicationPrecursor`` and ``IndicationValue``. Coded
values carry ``Text``, ``Qualifier`` and ``Code`` (in samples: SNOMED CT for routes and time
units, NCI for dose units).

Everything else (CodeSystem versions, AdministrationTiming, modifiers, clarifying free text, a
second Frequency, ...) is accepted and kept generically as (path relative to the Sig or the
Instruction, text) pairs in ``other``; no structure is invented for it.

"As needed" has no element of its own in the samples: it is an ``IndicationForUse`` whose
precursor reads "as needed" (e.g. "as needed for" headache). ``as_needed`` is derived from that
text and is therefore a best effort; the original bytes remain the record.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Final, TypeAlias

from lxml import etree

from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.structure import (
    UNBOUNDED,
    Children,
    Slot,
    Spec,
    decimal_value,
    flatten,
    items,
    leaf,
    opt,
    req,
    text,
    walk,
    walk_leaves,
)
from eprescribe.ncpdp.types import Coded

__all__ = ["Sig", "SigInstruction", "parse_sig"]

SIG_TEXT_MAX: Final = 1000
_NUMBER_DIGITS: Final = 15

_SIG = Spec(
    req("SigText"),
    opt("CodeSystem"),
    Slot(("Instruction", "MultipleInstructionModifier"), 0, UNBOUNDED),
    open=True,
)
_INSTRUCTION = Spec(
    opt("DoseAdministration"),
    Slot(("TimingAndDuration", "MultipleTimingModifier"), 0, UNBOUNDED),
    open=True,
)
_DOSE_ADMINISTRATION = Spec(
    opt("DoseDeliveryMethod"), opt("Dosage"), opt("RouteOfAdministration"), open=True
)
_DOSAGE = Spec(Slot(("DoseQuantity", "DoseRangeModifier", "DoseUnitOfMeasure"), 1, 5), open=True)
_TIMING_AND_DURATION = Spec(Slot(("Frequency", "Interval", "Duration"), 0, UNBOUNDED), open=True)
_FREQUENCY = Spec(
    Slot(("FrequencyNumericValue", "VariableFrequencyModifier", "FrequencyUnits"), 1, 4), open=True
)
_INTERVAL = Spec(
    Slot(("IntervalNumericValue", "VariableIntervalModifier", "IntervalUnits"), 1, 4), open=True
)
_DURATION = Spec(Slot(("DurationNumericValue", "DurationText"), 1, 2), open=True)
_INDICATION = Spec(Slot(("IndicationPrecursor", "IndicationValue"), 1, 2), open=True)
_CODED = Spec(Slot(("Text", "Qualifier", "Code"), 1, 3), open=True)

# SNOMED CT time units; "day" (258703001) appears in public 2017071 samples, the others are the
# sibling SNOMED CT concepts. Units without a fixed length (month, year) are left out on purpose.
_DAYS_PER_UNIT_CODE: Final = {
    "258701004": Decimal(1) / Decimal(1440),
    "258702006": Decimal(1) / Decimal(24),
    "258703001": Decimal(1),
    "258705008": Decimal(7),
}
_DAYS_PER_UNIT_TEXT: Final = {
    "minute": _DAYS_PER_UNIT_CODE["258701004"],
    "hour": _DAYS_PER_UNIT_CODE["258702006"],
    "day": Decimal(1),
    "week": Decimal(7),
}


@dataclasses.dataclass(frozen=True, slots=True)
class SigInstruction:
    """One structured ``Instruction``; numbers are Decimals, units are coded values.

    ``frequency`` is "N times per ``frequency_units``"; ``interval`` is "every N
    ``interval_units``"; ``*_max`` is the upper end of a range (the second numeric value; a
    range's second unit is not kept separately). Where a Frequency, Interval or Duration occurs
    more than once, the first is modelled and later ones go to ``other``.
    """

    dose_quantity: Decimal | None = None
    dose_quantity_max: Decimal | None = None
    dose_unit: Coded | None = None
    dose_delivery_method: Coded | None = None
    route: Coded | None = None
    frequency: Decimal | None = None
    frequency_max: Decimal | None = None
    frequency_units: Coded | None = None
    interval: Decimal | None = None
    interval_max: Decimal | None = None
    interval_units: Coded | None = None
    duration: Decimal | None = None
    duration_units: Coded | None = None
    indication_precursor: Coded | None = None
    indication: Coded | None = None
    as_needed: bool = False
    other: tuple[tuple[str, str], ...] = ()

    def administrations_per_day(self) -> Decimal | None:
        """Doses per day from the frequency or interval, if their unit has a fixed length."""
        if self.frequency is not None:
            days = _days(self.frequency_units)
            return None if days is None else self.frequency / days
        if self.interval:
            days = _days(self.interval_units)
            return None if days is None else 1 / (self.interval * days)
        return None

    def quantity_per_day(self) -> Decimal | None:
        """Dose quantity times administrations per day (lower end of ranges), if known."""
        per_day = self.administrations_per_day()
        if per_day is None or self.dose_quantity is None:
            return None
        return self.dose_quantity * per_day


@dataclasses.dataclass(frozen=True, slots=True)
class Sig:
    """``Sig``: the free text (``SigText``) and the structured instructions, if any."""

    text: str
    instructions: tuple[SigInstruction, ...] = ()
    as_needed: bool = False
    other: tuple[tuple[str, str], ...] = ()


def _days(unit: Coded | None) -> Decimal | None:
    if unit is None:
        return None
    if unit.code in _DAYS_PER_UNIT_CODE:
        return _DAYS_PER_UNIT_CODE[unit.code]
    word = (unit.text or "").strip().lower().removesuffix("s")
    return _DAYS_PER_UNIT_TEXT.get(word)


# A numeric value (or range) with its unit: a dosage, frequency, interval or duration, as
# (low, high, units).
_Amount: TypeAlias = tuple[Decimal | None, Decimal | None, Coded | None]
_NO_AMOUNT: Final[_Amount] = (None, None, None)
# TimingAndDuration part -> (content model, numeric element, unit element)
_TIMING_PARTS: Final = {
    "Frequency": (_FREQUENCY, "FrequencyNumericValue", "FrequencyUnits"),
    "Interval": (_INTERVAL, "IntervalNumericValue", "IntervalUnits"),
    "Duration": (_DURATION, "DurationNumericValue", "DurationText"),
}
Pairs = list[tuple[str, str]]
# Children whose content the value objects model; anything else goes to ``other``.
_SIG_MODELLED: Final = frozenset({"SigText", "Instruction"})
_INSTRUCTION_MODELLED: Final = frozenset(
    {"DoseAdministration", "TimingAndDuration", "IndicationForUse"}
)
_DOSE_MODELLED: Final = frozenset({"DoseDeliveryMethod", "RouteOfAdministration", "Dosage"})


def parse_sig(el: etree._Element, path: str) -> Sig:
    """Validate a ``Sig`` element and return its value object."""
    children = walk(el, _SIG, path)
    # Most Sigs are free text only: skip the generators when there is nothing to iterate.
    sig_as_needed = "IndicationForUse" in children and any(
        _indication(item, where)[2] for item, where in items(children, "IndicationForUse", path)
    )
    instructions = (
        tuple(
            _instruction(item, where, sig_as_needed)
            for item, where in items(children, "Instruction", path)
        )
        if "Instruction" in children
        else ()
    )
    return Sig(
        text(children, "SigText", path, SIG_TEXT_MAX),
        instructions,
        sig_as_needed or any(item.as_needed for item in instructions),
        tuple(_other(el, children, _SIG_MODELLED, "")),
    )


def _instruction(el: etree._Element, path: str, sig_as_needed: bool) -> SigInstruction:
    children = walk(el, _INSTRUCTION, path)
    dose, method, route, other = _dose_administration(children, path)
    timing, timing_other = _timings(children, path)
    precursor, indication, as_needed, indication_other = _instruction_indication(children, path)
    dose_low, dose_high, dose_units = dose
    frequency, frequency_max, frequency_units = timing.get("Frequency", _NO_AMOUNT)
    interval, interval_max, interval_units = timing.get("Interval", _NO_AMOUNT)
    duration, _, duration_units = timing.get("Duration", _NO_AMOUNT)
    return SigInstruction(
        dose_quantity=dose_low,
        dose_quantity_max=dose_high,
        dose_unit=dose_units,
        dose_delivery_method=method,
        route=route,
        frequency=frequency,
        frequency_max=frequency_max,
        frequency_units=frequency_units,
        interval=interval,
        interval_max=interval_max,
        interval_units=interval_units,
        duration=duration,
        duration_units=duration_units,
        indication_precursor=precursor,
        indication=indication,
        as_needed=sig_as_needed or as_needed,
        other=tuple(
            other
            + timing_other
            + indication_other
            + _other(el, children, _INSTRUCTION_MODELLED, "")
        ),
    )


def _dose_administration(
    instruction: Children, path: str
) -> tuple[_Amount, Coded | None, Coded | None, Pairs]:
    group = instruction.get("DoseAdministration")
    if not group:
        return _NO_AMOUNT, None, None, []
    el, path = group[0], f"{path}/DoseAdministration"
    children = walk(el, _DOSE_ADMINISTRATION, path)
    dosage = children.get("Dosage")
    amount = (
        _amount(dosage[0], f"{path}/Dosage", _DOSAGE, "DoseQuantity", "DoseUnitOfMeasure")
        if dosage
        else _NO_AMOUNT
    )
    return (
        amount,
        _opt_coded(children, "DoseDeliveryMethod", path),
        _opt_coded(children, "RouteOfAdministration", path),
        _other(el, children, _DOSE_MODELLED, "DoseAdministration"),
    )


def _timings(instruction: Children, path: str) -> tuple[dict[str, _Amount], Pairs]:
    """The first Frequency, Interval and Duration over all TimingAndDuration; the rest as text."""
    first: dict[str, _Amount] = {}
    other: Pairs = []
    for timing, where in items(instruction, "TimingAndDuration", path):
        walk(timing, _TIMING_AND_DURATION, where)
        for child in timing:
            name = str(child.tag)
            if name in _TIMING_PARTS and name not in first:
                spec, number, units = _TIMING_PARTS[name]
                first[name] = _amount(child, f"{where}/{name}", spec, number, units)
            else:
                other.extend(flatten(child, "TimingAndDuration"))
    return first, other


def _instruction_indication(
    children: Children, path: str
) -> tuple[Coded | None, Coded | None, bool, Pairs]:
    """The first IndicationForUse modelled, later ones as text; as needed if any says so."""
    precursor = value = None
    as_needed, other = False, []
    for position, (item, where) in enumerate(items(children, "IndicationForUse", path)):
        first_precursor, first_value, flag = _indication(item, where)
        as_needed = as_needed or flag
        if position == 0:
            precursor, value = first_precursor, first_value
        else:
            other.extend(flatten(item, ""))
    return precursor, value, as_needed, other


def _indication(el: etree._Element, path: str) -> tuple[Coded | None, Coded | None, bool]:
    children = walk(el, _INDICATION, path)
    precursor = _opt_coded(children, "IndicationPrecursor", path)
    value = _opt_coded(children, "IndicationValue", path)
    words = (precursor.text or "").strip().lower() if precursor else ""
    return precursor, value, "as needed" in words or words == "prn"


def _amount(el: etree._Element, path: str, spec: Spec, number: str, units: str) -> _Amount:
    children = walk(el, spec, path)
    low, high = _numbers(children, number, path)
    return low, high, _opt_coded(children, units, path)


def _numbers(children: Children, name: str, path: str) -> tuple[Decimal | None, Decimal | None]:
    group = children.get(name)
    if not group:
        return None, None
    if len(group) > 2:
        raise StandardViolationError("element occurs too often", f"{path}/{name}[3]")
    where = f"{path}/{name}" if len(group) == 1 else f"{path}/{name}[1]"
    low = decimal_value(leaf(group[0], where), where, _NUMBER_DIGITS)
    if len(group) == 1:
        return low, None
    where = f"{path}/{name}[2]"
    return low, decimal_value(leaf(group[1], where), where, _NUMBER_DIGITS)


def _opt_coded(children: Children, name: str, path: str) -> Coded | None:
    """The first ``name`` child as a coded value (only a range's unit can legally repeat)."""
    group = children.get(name)
    if not group:
        return None
    return _coded(group[0], f"{path}/{name}" if len(group) == 1 else f"{path}/{name}[1]")


def _coded(el: etree._Element, path: str) -> Coded:
    values = walk_leaves(el, _CODED, path)
    get = values.get
    return Coded(get("Text"), get("Qualifier"), get("Code"))


def _other(el: etree._Element, children: Children, modelled: frozenset[str], prefix: str) -> Pairs:
    """Unmodelled children of ``el`` flattened to (relative path, text), in document order."""
    if children.keys() <= modelled:
        return []
    return [pair for child in el if child.tag not in modelled for pair in flatten(child, prefix)]
