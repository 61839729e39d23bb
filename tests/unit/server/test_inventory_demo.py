"""The demo's fictional listings are read as the NDC Directory import reads them, and name
the drug reference's clinical drugs, so a fill of the sample prescription finds its stock."""

from __future__ import annotations

from eprescribe.dispensing.inventory import SCHEDULE_II
from eprescribe.drugs import DrugReference
from server.inventory.demo import DEMO_STOCK, demo_products
from server.inventory.directory import product_codes


def test_the_demo_stock_is_the_reference_drugs() -> None:
    reference = DrugReference.bundled().with_products(demo_products())
    found = {item.ndc11: reference.by_ndc(item.ndc11) for item in DEMO_STOCK}
    assert {ndc: (d.name, d.dea_schedule) if d else None for ndc, d in found.items()} == {
        "99999041090": ("lisinopril 10 MG Oral Tablet", None),
        "99999052001": ("oxycodone hydrochloride 5 MG Oral Tablet", SCHEDULE_II),
        "99999063030": ("atorvastatin 20 MG Oral Tablet", None),
    }


def test_a_package_code_finds_its_product_code_in_every_layout() -> None:
    assert product_codes("99999041090") == ["99999-0410", "99999-410"]
    assert product_codes("00002322730") == ["00002-3227", "0002-3227"]
    assert product_codes("12345678901") == ["12345-6789"]
