"""The ``RxFillIndicatorChange`` transaction (NCPDP SCRIPT Standard 2017071): a prescriber
changes which fill statuses it wants to be told by RxFill (or asks for none any more).

The reference (ncpdp-script.md) names the transaction but not its content model. Read here
with the shape of a CancelRx (:mod:`eprescribe.ncpdp.cancelrx`): the order it is about
(``Patient``, ``Pharmacy``, ``Prescriber``, ``MedicationPrescribed``, found by the header's
``PrescriberOrderNumber`` like a CancelRx's), its ``MedicationPrescribed/RxFillIndicator``
the new value (absent: the prescriber wants none). Unverified against the Standard.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from lxml import etree

from eprescribe.ncpdp.cancelrx import CancelRx, parse_cancelrx

__all__ = [
    "RX_FILL_INDICATOR_CHANGE_PATH",
    "RxFillIndicatorChange",
    "parse_rx_fill_indicator_change",
]

RX_FILL_INDICATOR_CHANGE_PATH: Final = "/Message/Body/RxFillIndicatorChange"


@dataclasses.dataclass(frozen=True, slots=True)
class RxFillIndicatorChange:
    """The order (as a CancelRx names one) and the new indicator."""

    order: CancelRx

    @property
    def indicator(self) -> str | None:
        return self.order.medication.rx_fill_indicator


def parse_rx_fill_indicator_change(
    el: etree._Element, path: str = RX_FILL_INDICATOR_CHANGE_PATH
) -> RxFillIndicatorChange:
    """Validate an ``RxFillIndicatorChange`` element."""
    return RxFillIndicatorChange(parse_cancelrx(el, path))
