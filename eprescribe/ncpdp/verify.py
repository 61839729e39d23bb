"""The ``Verify`` transaction (NCPDP SCRIPT Standard 2017071).

``Verify`` answers a ``ReturnReceipt``: ``VerifyStatus`` with the fixed ``Code`` 010, optional
DescriptionCode (0..10) and Description.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from lxml import etree

from eprescribe.ncpdp.structure import (
    Spec,
    in_code_list,
    only_child,
    opt,
    opt_text,
    read_description_codes,
    req,
    text,
    walk,
)

__all__ = ["VERIFY_CODE", "Verify", "parse_verify"]

VERIFY_CODE: Final = "010"

_VERIFY = Spec(req("VerifyStatus"))
_VERIFY_STATUS = Spec(req("Code"), opt("DescriptionCode", 10), opt("Description"), open=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Verify:
    """A validated Verify body."""

    code: str = VERIFY_CODE
    description_codes: tuple[str, ...] = ()
    description: str | None = None


def parse_verify(el: etree._Element, path: str) -> Verify:
    """Validate a ``Verify`` element and return its value object."""
    path_status = f"{path}/VerifyStatus"
    status = walk(only_child(el, _VERIFY, path)[1], _VERIFY_STATUS, path_status)
    return Verify(
        code=in_code_list(text(status, "Code", path_status), {VERIFY_CODE}, f"{path_status}/Code"),
        description_codes=read_description_codes(status, path_status),
        description=opt_text(status, "Description", path_status),
    )
