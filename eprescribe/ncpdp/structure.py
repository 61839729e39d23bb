"""Structural validation of SCRIPT elements (NCPDP SCRIPT Standard 2017071).

The official XSDs are NCPDP member material and are not part of this project, so structure is
checked here. Each complex element is described by a :class:`Spec`: an ordered tuple of
:class:`Slot` (child names, minimum, maximum, and for leaves a maximum length). :func:`walk`
checks presence, order and cardinality in a single pass over an element's children and returns
them grouped by name; :func:`walk_leaves` does the same for elements made of single leaves and
returns their texts. The readers below turn leaves into values, checking lengths, datatypes and
code lists. Paths for error messages are only built when an error is raised.

A *closed* spec rejects any child it does not name. An *open* spec is for elements whose full
2017071 content model could not be confirmed from public material: children it names must still
be in order and within their cardinality, other children are tolerated (and left to the caller,
which may keep them generically). Every violation raises
:class:`~eprescribe.ncpdp.errors.StandardViolationError` carrying the XPath of the first
offending element.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Collection, Iterator
from decimal import Decimal
from typing import Final, NoReturn, TypeAlias

from lxml import etree

from eprescribe.ncpdp.errors import StandardViolationError
from eprescribe.ncpdp.types import (
    DateValue,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_decimal,
)

UNBOUNDED: Final = 1 << 30
#: Upper bound for text whose SCRIPT length is not modelled here (the body is at most 1 MiB).
ANY_LENGTH: Final = 1 << 20

Element: TypeAlias = etree._Element
Children: TypeAlias = dict[str, list[Element]]


@dataclasses.dataclass(frozen=True, slots=True)
class Slot:
    """One position of a sequence: any of ``names``, between ``min`` and ``max`` times in total.

    A slot with several names is either an ``xsd:choice`` or a group whose internal order is not
    checked.
    """

    names: tuple[str, ...]
    min: int = 1
    max: int = 1
    max_len: int = 0  # for leaves read by walk_leaves; 0 means ANY_LENGTH


def req(name: str, max_len: int = 0) -> Slot:
    """A required element that occurs once (a leaf of at most ``max_len`` characters)."""
    return Slot((name,), 1, 1, max_len)


def opt(name: str, max_occurs: int = 1, max_len: int = 0) -> Slot:
    """An optional element."""
    return Slot((name,), 0, max_occurs, max_len)


class Spec:
    """The content model of one complex element."""

    __slots__ = ("index", "limits", "maxima", "minima", "next_required", "open", "slots")

    def __init__(self, *slots: Slot, open: bool = False) -> None:
        self.slots = slots
        self.open = open
        self.index = {name: pos for pos, slot in enumerate(slots) for name in slot.names}
        self.limits = {name: slot.max_len or ANY_LENGTH for slot in slots for name in slot.names}
        self.minima = tuple(slot.min for slot in slots)
        self.maxima = tuple(slot.max for slot in slots)
        # next_required[i]: the first slot at or after i that must occur (len(slots) if none).
        following = [len(slots)] * (len(slots) + 1)
        for pos in range(len(slots) - 1, -1, -1):
            following[pos] = pos if slots[pos].min else following[pos + 1]
        self.next_required = tuple(following)


def child_path(path: str, name: str, position: int, count: int) -> str:
    """XPath of the ``position``-th (0-based) of ``count`` same-named children."""
    return f"{path}/{name}" if count == 1 else f"{path}/{name}[{position + 1}]"


def walk(el: Element, spec: Spec, path: str) -> Children:
    """Check ``el``'s children against ``spec`` in one pass; return them grouped by name.

    This runs for every complex element of every message, hence the local variables and the
    cheap precomputed checks: the slow diagnosis (:func:`_fail`) runs only on error. Children are
    taken as a slice (``el[:]``): lxml builds that list in C, several times faster than its
    child iterator.
    """
    content = el.text
    if content is not None and not content.isspace():
        raise StandardViolationError("unexpected text content", path)
    index, minima, maxima = spec.index, spec.minima, spec.maxima
    next_required = spec.next_required
    found: Children = {}
    # count starts high so that minima[-1] never fires before the first slot is entered.
    current, count = -1, UNBOUNDED
    for child in el[:]:  # type: ignore[index]  # lxml-stubs 0.5 lack slicing
        name = child.tag
        tail = child.tail
        if tail is not None and not tail.isspace():
            raise StandardViolationError("unexpected text content", path)
        pos = index.get(name)
        if pos is None:
            if not spec.open or name[0] == "{":
                raise StandardViolationError("unexpected element", _path_of(el, child, path))
        elif pos == current:
            count += 1
            if count > maxima[pos]:
                raise StandardViolationError("element occurs too often", _path_of(el, child, path))
        else:
            if pos < current or next_required[current + 1] < pos or count < minima[current]:
                _fail(el, child, spec, path, current, count, pos)
            current, count = pos, 1
        group = found.get(name)
        if group is None:
            found[name] = [child]
        else:
            group.append(child)
    if next_required[current + 1] < len(minima) or (current >= 0 and count < minima[current]):
        _fail(el, None, spec, path, current, count, len(minima))
    return found


def walk_leaves(el: Element, spec: Spec, path: str) -> dict[str, str]:
    """Like :func:`walk` for elements whose named children are all single leaves.

    Returns the stripped text of each named child, checking that it is a leaf, not empty, not
    longer than its slot's ``max_len`` and not repeated. Children an open spec does not name are
    skipped.
    """
    content = el.text
    if content is not None and not content.isspace():
        raise StandardViolationError("unexpected text content", path)
    index, minima, maxima, limits = spec.index, spec.minima, spec.maxima, spec.limits
    next_required = spec.next_required
    values: dict[str, str] = {}
    current, count = -1, UNBOUNDED
    for child in el[:]:  # type: ignore[index]  # lxml-stubs 0.5 lack slicing
        name = child.tag
        tail = child.tail
        if tail is not None and not tail.isspace():
            raise StandardViolationError("unexpected text content", path)
        pos = index.get(name)
        if pos is None:
            if not spec.open or name[0] == "{":
                raise StandardViolationError("unexpected element", _path_of(el, child, path))
            continue
        if pos == current:
            count += 1
            if count > maxima[pos]:
                raise StandardViolationError("element occurs too often", _path_of(el, child, path))
        else:
            if pos < current or next_required[current + 1] < pos or count < minima[current]:
                _fail(el, child, spec, path, current, count, pos)
            current, count = pos, 1
        value = child.text
        if value is not None and not len(child):
            value = value.strip()
            if value and len(value) <= limits[name] and name not in values:
                values[name] = value
                continue
        _bad_leaf(el, child, path, limits[name], name in values)
    if next_required[current + 1] < len(minima) or (current >= 0 and count < minima[current]):
        _fail(el, None, spec, path, current, count, len(minima))
    return values


def only_child(el: Element, spec: Spec, path: str) -> tuple[str, Element]:
    """The name and element of the only child of ``el``.

    For wrappers such as ``Patient`` (HumanPatient or NonHumanPatient), whose closed ``spec`` is
    a single required slot occurring once. The common shape, one named child and no text at all,
    is recognised without a full :func:`walk`; anything else goes through :func:`walk`, which
    raises the precise error or returns the same child.
    """
    children = el[:]  # type: ignore[index]  # lxml-stubs 0.5 lack slicing
    if len(children) == 1 and el.text is None:
        child = children[0]
        name = child.tag
        if child.tail is None and name in spec.index:
            return name, child
    ((name, group),) = walk(el, spec, path).items()
    return name, group[0]


def only_leaf(el: Element, spec: Spec, path: str) -> tuple[str, str]:
    """Like :func:`only_child` for a choice of leaves (e.g. ``Date`` or ``DateTime``).

    Returns the leaf's name and stripped text; anything but the common shape goes through
    :func:`walk_leaves`.
    """
    children = el[:]  # type: ignore[index]  # lxml-stubs 0.5 lack slicing
    if len(children) == 1 and el.text is None:
        child = children[0]
        name, value = child.tag, child.text
        if value is not None and child.tail is None and not len(child) and name in spec.index:
            value = value.strip()
            if value and len(value) <= spec.limits[name]:
                return name, value
    ((name, value),) = walk_leaves(el, spec, path).items()
    return name, value


def _bad_leaf(parent: Element, child: Element, path: str, max_len: int, repeated: bool) -> NoReturn:
    where = _path_of(parent, child, path)
    if repeated:
        raise StandardViolationError("element occurs too often", where)
    _bad_leaf_value(child, where, max_len)


def _fail(
    el: Element, child: Element | None, spec: Spec, path: str, current: int, count: int, pos: int
) -> NoReturn:
    """Raise the precise error for an order or cardinality problem found by :func:`walk`."""
    if child is not None and pos < current:
        raise StandardViolationError("element out of order", _path_of(el, child, path))
    if current >= 0 and count < spec.slots[current].min:
        raise StandardViolationError(
            "element occurs too rarely", f"{path}/{spec.slots[current].names[0]}"
        )
    for slot in spec.slots[current + 1 : pos]:
        if slot.min == 0:
            continue
        if child is not None and _appears_later(child, slot.names):
            raise StandardViolationError("element out of order", _path_of(el, child, path))
        raise StandardViolationError("required element missing", f"{path}/{slot.names[0]}")
    raise StandardViolationError("element out of order", path)  # not reached: walk checked


def _appears_later(child: Element, names: tuple[str, ...]) -> bool:
    return any(sibling.tag in names for sibling in child.itersiblings())


def _path_of(parent: Element, child: Element, path: str) -> str:
    name = etree.QName(child).localname if isinstance(child.tag, str) else "node()"
    same = [sibling for sibling in parent if sibling.tag == child.tag]
    return child_path(path, name, same.index(child), len(same))


# --- leaves ---------------------------------------------------------------------------------


def leaf(el: Element, path: str, max_len: int = ANY_LENGTH) -> str:
    """The stripped text of a leaf element, 1..``max_len`` characters long."""
    value = el.text
    if value is not None and not len(el):
        value = value.strip()
        if value and len(value) <= max_len:
            return value
    return _bad_leaf_value(el, path, max_len)


def _bad_leaf_value(el: Element, path: str, max_len: int) -> NoReturn:
    """Raise the precise error for a leaf that :func:`leaf` or :func:`text` did not accept."""
    if len(el):
        raise StandardViolationError("unexpected element", _path_of(el, el[0], path))
    value = el.text.strip() if el.text else ""
    if not value:
        raise StandardViolationError("empty value", path)
    if len(value) > max_len:
        raise StandardViolationError(f"value longer than {max_len} characters", path)
    raise StandardViolationError("invalid value", path)  # not reached: leaf accepted it


def text(children: Children, name: str, path: str, max_len: int = ANY_LENGTH) -> str:
    """The text of a required, single child leaf (its presence was checked by :func:`walk`)."""
    el = children[name][0]
    value = el.text
    if value is not None and not len(el):
        value = value.strip()
        if value and len(value) <= max_len:
            return value
    return _bad_leaf_value(el, f"{path}/{name}", max_len)


def opt_text(children: Children, name: str, path: str, max_len: int = ANY_LENGTH) -> str | None:
    """The text of an optional, single child leaf, or ``None``."""
    group = children.get(name)
    if group is None:
        return None
    # The fast path of text(), repeated: optional leaves are read as often as required ones.
    el = group[0]
    value = el.text
    if value is not None and not len(el):
        value = value.strip()
        if value and len(value) <= max_len:
            return value
    return _bad_leaf_value(el, f"{path}/{name}", max_len)


def items(children: Children, name: str, path: str) -> Iterator[tuple[Element, str]]:
    """Each ``name`` child with its XPath (indexed only when the name repeats)."""
    group = children.get(name, ())
    for position, child in enumerate(group):
        yield child, child_path(path, name, position, len(group))


def in_code_list(value: str, allowed: Collection[str], path: str) -> str:
    """``value`` if it is one of ``allowed``, else a 3000 rejection."""
    if value not in allowed:
        raise StandardViolationError("value not in code list", path)
    return value


def decimal_value(value: str, path: str, max_digits: int = 30) -> Decimal:
    """A plain decimal number with at most ``max_digits`` digits."""
    try:
        number = parse_decimal(value)
    except ValueError:
        raise StandardViolationError("not a number", path) from None
    # The regex admits only digits, one point and a sign, so the length bounds the digit count.
    if len(value) > max_digits and sum(ch.isdigit() for ch in value) > max_digits:
        raise StandardViolationError(f"more than {max_digits} digits", path)
    return number


def integer_value(value: str, path: str, max_digits: int) -> int:
    """A non-negative integer of 1..``max_digits`` ASCII digits."""
    if not (value.isascii() and value.isdigit()) or len(value) > max_digits:
        raise StandardViolationError(f"not an integer of 1 to {max_digits} digits", path)
    return int(value)


def boolean_value(value: str, path: str) -> bool:
    """An ``xsd:boolean``."""
    try:
        return parse_boolean(value)
    except ValueError:
        raise StandardViolationError("not a boolean", path) from None


def datetime_value(value: str, path: str) -> dt.datetime:
    """An ``xsd:dateTime`` as an aware UTC datetime (a missing zone means UTC)."""
    try:
        return parse_datetime(value)[0]
    except ValueError:
        raise StandardViolationError("invalid dateTime", path) from None


_DATE_OR_DATETIME = Spec(Slot(("Date", "DateTime"), 1, 1, 40))


def date_value(el: Element, path: str) -> DateValue:
    """The "Date or DateTime" choice of ``el`` (e.g. ``DateOfBirth``)."""
    name, value = only_leaf(el, _DATE_OR_DATETIME, path)
    if name == "Date":
        try:
            return DateValue(parse_date(value))
        except ValueError:
            raise StandardViolationError("invalid date", f"{path}/Date") from None
    try:
        moment, written = parse_datetime(value)
    except ValueError:
        raise StandardViolationError("invalid dateTime", f"{path}/DateTime") from None
    return DateValue(written, moment)


def flatten(el: Element, prefix: str) -> list[tuple[str, str]]:
    """Non-empty leaf texts under ``el`` as (relative path, text) pairs, in document order.

    Used to keep content that is accepted but not modelled, without inventing structure for it.
    """
    name = el.tag if isinstance(el.tag, str) else "node()"
    if name[0] == "{":
        name = etree.QName(el).localname
    here = f"{prefix}/{name}" if prefix else name
    if not len(el):
        value = el.text.strip() if el.text else ""
        return [(here, value)] if value else []
    pairs: list[tuple[str, str]] = []
    for child in el:
        pairs.extend(flatten(child, here))
    return pairs


def single(children: Children, name: str, path: str) -> Element | None:
    """The only ``name`` child, ``None`` if absent; a 3000 rejection if it repeats.

    For children an open spec tolerates without naming them.
    """
    group = children.get(name)
    if group is None:
        return None
    if len(group) > 1:
        raise StandardViolationError("element occurs too often", f"{path}/{name}[2]")
    return group[0]


_DESCRIPTION_CODE = re.compile(r"\d{3,4}", re.ASCII)


def read_description_codes(children: Children, path: str) -> tuple[str, ...]:
    """The ``DescriptionCode`` children of a Status, Error or VerifyStatus (3 or 4 digits)."""
    codes = []
    for item, where in items(children, "DescriptionCode", path):
        value = leaf(item, where, 4)
        if _DESCRIPTION_CODE.fullmatch(value) is None:
            raise StandardViolationError("not a description code", where)
        codes.append(value)
    return tuple(codes)
