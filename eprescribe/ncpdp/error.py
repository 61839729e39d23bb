"""The ``Error`` transaction (NCPDP SCRIPT Standard 2017071).

Not to be confused with ``errors.py``, the exception hierarchy that becomes these replies.
Children: Code, DescriptionCode (0..10), Description (unbounded).
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

__all__ = ["ERROR_CODES", "Error", "parse_error"]

#: 600 communication problem, 601 receiver unable to process, 602 receiver system error,
#: 700 configuration error, 900 transaction rejected.
ERROR_CODES: Final = frozenset({"600", "601", "602", "700", "900"})

_ERROR = Spec(req("Code"), opt("DescriptionCode", 10), opt("Description"))


@dataclasses.dataclass(frozen=True, slots=True)
class Error:
    """A validated Error body."""

    code: str
    description_codes: tuple[str, ...] = ()
    description: str | None = None


def parse_error(el: etree._Element, path: str) -> Error:
    """Validate an ``Error`` element and return its value object."""
    children = walk(el, _ERROR, path)
    return Error(
        code=in_code_list(text(children, "Code", path), ERROR_CODES, f"{path}/Code"),
        description_codes=read_description_codes(children, path),
        description=opt_text(children, "Description", path),
    )
