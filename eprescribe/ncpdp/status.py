"""The ``Status`` transaction (NCPDP SCRIPT Standard 2017071).

``Status`` means the receiver accepted the message and took responsibility for it. Children:
Code, DescriptionCode (0..10), Description (an1..70); anything after them (e.g.
PrescriptionDeliveryMethod) is tolerated without content validation.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from lxml import etree

from eprescribe.ncpdp.structure import (
    Spec,
    in_code_list,
    opt,
    opt_text,
    read_description_codes,
    req,
    text,
    walk,
)

__all__ = ["STATUS_CODES", "STATUS_DESCRIPTION_MAX", "Status", "parse_status"]

#: 000 successful, 001 messages waiting, 002 no more, 003 no messages, 005 password expiring,
#: 010 accepted by the ultimate receiver.
STATUS_CODES: Final = frozenset({"000", "001", "002", "003", "005", "010"})
STATUS_DESCRIPTION_MAX: Final = 70

_STATUS = Spec(req("Code"), opt("DescriptionCode", 10), opt("Description"), open=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Status:
    """A validated Status body."""

    code: str
    description_codes: tuple[str, ...] = ()
    description: str | None = None


def parse_status(el: etree._Element, path: str) -> Status:
    """Validate a ``Status`` element and return its value object."""
    children = walk(el, _STATUS, path)
    return Status(
        code=in_code_list(text(children, "Code", path), STATUS_CODES, f"{path}/Code"),
        description_codes=read_description_codes(children, path),
        description=opt_text(children, "Description", path, STATUS_DESCRIPTION_MAX),
    )
