"""Shipping a ready fill to a patient who asked for delivery: the carriers the hub knows, what
their tracking numbers look like, and the public tracking link the patient is sent.

A shipment is ``shipped`` (out for delivery) from the moment staff give the carrier and the
tracking number, then ``delivered`` when staff record it. The fill stays ``ready`` meanwhile:
its hand-over (the fill completed, the prescriber told) is recorded as for a pick-up.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from urllib.parse import quote

from ..verification import VerificationError

__all__ = ["CARRIERS", "ShipmentState", "Tracking", "tracking"]


class ShipmentState(enum.StrEnum):
    #: handed to the carrier: out for delivery
    SHIPPED = "shipped"
    DELIVERED = "delivered"


#: carrier -> (what its tracking numbers look like, its public tracking page)
CARRIERS: dict[str, tuple[re.Pattern[str], str]] = {
    "usps": (re.compile(r"[0-9]{20,22}|[A-Z]{2}[0-9]{9}US"),
             "https://tools.usps.com/go/TrackConfirmAction?tLabels={}"),
    "ups": (re.compile(r"1Z[0-9A-Z]{16}"), "https://www.ups.com/track?tracknum={}"),
    "fedex": (re.compile(r"[0-9]{12}|[0-9]{15}|[0-9]{20}"),
              "https://www.fedex.com/fedextrack/?trknbr={}"),
    "dhl": (re.compile(r"[0-9]{10,11}|JJD[0-9]{16,18}"),
            "https://www.dhl.com/us-en/home/tracking.html?tracking-id={}"),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Tracking:
    carrier: str
    number: str
    url: str


def tracking(carrier: str, number: str) -> Tracking:
    """The carrier's tracking of ``number`` (spaces dropped, letters in upper case);
    ``tracking_invalid`` unless the carrier is known and the number has its form."""
    known = CARRIERS.get(carrier.strip().lower())
    if known is None:
        raise VerificationError(
            "carrier_unknown", f"The carrier is one of {', '.join(sorted(CARRIERS))}."
        )
    pattern, page = known
    cleaned = re.sub(r"[\s-]", "", number).upper()
    if not pattern.fullmatch(cleaned):
        raise VerificationError(
            "tracking_invalid", f"That is not a {carrier.strip().upper()} tracking number."
        )
    return Tracking(carrier.strip().lower(), cleaned, page.format(quote(cleaned)))
