"""A scanned code as the fill rules read it: the product's NDC (the 11-digit reading the drug
reference knows), lot, expiry and serial, and the clinical drug the reference knows it as."""

from __future__ import annotations

from eprescribe.dispensing import fills as rules
from eprescribe.dispensing.barcodes import BarcodeError, parse_scan
from eprescribe.drugs import DrugReference
from eprescribe.verification import VerificationError

#: what a scan field takes at most (a GS1 DataMatrix of a drug package is far shorter)
SCAN_MAX = 200


def product_of(
    text: str, reference: DrugReference, order: rules.Order, rx_number: str | None = None
) -> rules.Product:
    """The product a scanned ``text`` names; refused (422) when it names none: unreadable, or
    a prescription label's code (``RX`` + Rx number) instead of the stock bottle's. The label
    of the prescription being filled (``rx_number``) is recognised as its own (``own_label``):
    the vial is labelled for this fill, and still the stock bottle names the product."""
    try:
        scan = parse_scan(text)
    except BarcodeError as exc:
        raise VerificationError("scan_unreadable", f"The code could not be read: {exc}") from None
    if scan.kind == "rx" and rx_number is not None and scan.rx_number == rx_number:
        raise VerificationError(
            "own_label",
            f"This is this prescription's own label (Rx {rx_number}): it matches. Scan the "
            "stock bottle for the product.",
        )
    if scan.kind == "rx":
        raise VerificationError(
            "not_a_product",
            f"This is the label of prescription {scan.rx_number}, not a stock bottle: scan "
            "the product.",
        )
    candidates = tuple(scan.ndc11_candidates())
    if not candidates:
        raise VerificationError("scan_unreadable", "The code carries no NDC.")
    if order.ndc11 in candidates:
        ndc11 = order.ndc11
    else:
        known = [c for c in candidates if reference.by_ndc(c) is not None]
        ndc11 = known[0] if len(known) == 1 else candidates[0]
    drug = reference.by_ndc(ndc11)
    return rules.Product(
        ndc11=ndc11,
        lot=scan.lot,
        expiry=scan.expiry,
        serial=scan.serial,
        gtin=scan.gtin,
        drug=drug.name if drug is not None else None,
    )
