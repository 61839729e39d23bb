"""What a receipt says: a scanned package barcode, or the NDC, lot and expiry typed.

A GS1 DataMatrix carries the product (GTIN), lot and expiry; a UPC-A or NDC linear code only
the product, so its lot and expiry are typed beside it. Where a scan and a typed value both
say something, they must agree: a technician who types the lot of another package has the
wrong package in hand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from eprescribe.drugs import ndc_candidates

from ..errors import Unprocessable
from .store import Receipt


def receipt_of(
    scan: str | None,
    ndc: str | None,
    lot: str | None,
    expiry: dt.date | None,
    quantity: Decimal,
) -> Receipt:
    """The receipt the body describes; 422 with the reason when it cannot be read or is
    incomplete."""
    serial = None
    if scan is not None:
        candidates, lot, expiry, serial = _scanned(scan, ndc, lot, expiry)
    elif ndc is not None:
        candidates = ndc_candidates(ndc)
        if not candidates:
            raise Unprocessable("ndc_invalid", "That is not an NDC.")
    else:
        raise Unprocessable("product_missing", "Scan the package, or type its NDC.")
    if lot is None or not lot.strip():
        raise Unprocessable("lot_missing", "Type the lot number printed on the package.")
    if expiry is None:
        raise Unprocessable("expiry_missing", "Type the expiry date printed on the package.")
    return Receipt(tuple(candidates), lot.strip(), expiry, quantity, serial)


def _scanned(
    text: str, ndc: str | None, lot: str | None, expiry: dt.date | None
) -> tuple[tuple[str, ...], str | None, dt.date | None, str | None]:
    from eprescribe.dispensing.barcodes import BarcodeError, parse_scan

    try:
        scan = parse_scan(text)
    except BarcodeError as exc:
        raise Unprocessable("scan_unreadable", exc.reason) from None
    candidates = scan.ndc11_candidates()
    if scan.kind == "rx" or not candidates:
        raise Unprocessable(
            "scan_not_stock", "That is a prescription label, not a stock package: scan the bottle."
        )
    if ndc is not None and not set(ndc_candidates(ndc)) & set(candidates):
        raise Unprocessable("scan_mismatch", "The NDC typed is not the package scanned.")
    if lot is not None and scan.lot is not None and lot.strip() != scan.lot:
        raise Unprocessable("scan_mismatch", "The lot typed is not the lot scanned.")
    if expiry is not None and scan.expiry is not None and expiry != scan.expiry:
        raise Unprocessable("scan_mismatch", "The expiry typed is not the expiry scanned.")
    return candidates, scan.lot or lot, scan.expiry or expiry, scan.serial
