"""FDA NDC Directory import, end to end on small files in the FDA format (fictional 99999
labeler)."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from eprescribe.drugs import (
    DrugReference,
    FdaFormatError,
    ImportedPackage,
    ImportedProduct,
    ImportStats,
    Ingredient,
    merge,
    read_packages,
    read_products,
)
from eprescribe.drugs.fda import PACKAGE_COLUMNS, PRODUCT_COLUMNS, decode_line

FIXTURES = Path(__file__).parent / "fixtures"


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


@pytest.fixture(scope="module")
def product_stats() -> ImportStats:
    return ImportStats()


@pytest.fixture(scope="module")
def package_stats() -> ImportStats:
    return ImportStats()


@pytest.fixture(scope="module")
def products(product_stats: ImportStats, package_stats: ImportStats) -> dict[str, ImportedProduct]:
    merged = merge(
        read_products(_lines(FIXTURES / "product.txt"), stats=product_stats),
        read_packages(_lines(FIXTURES / "package.txt"), stats=package_stats),
    )
    return {product.product_ndc: product for product in merged}


def test_fixture_headers_are_exactly_the_fda_columns() -> None:
    product_header = (FIXTURES / "product.txt").read_bytes().split(b"\r\n")[0].decode()
    package_header = (FIXTURES / "package.txt").read_bytes().split(b"\r\n")[0].decode()
    assert tuple(product_header.split("\t")) == PRODUCT_COLUMNS
    assert tuple(package_header.split("\t")) == PACKAGE_COLUMNS


def test_counts(
    products: dict[str, ImportedProduct], product_stats: ImportStats, package_stats: ImportStats
) -> None:
    assert len(products) == 9
    assert (
        product_stats.read,
        product_stats.imported,
        product_stats.skipped,
        product_stats.bad,
    ) == (12, 9, 1, 2)
    assert product_stats.problems == [
        "line 6: 3 substances, 2 strengths, 2 units",
        "line 7: 21 fields, header has 20",
    ]
    assert (
        package_stats.read,
        package_stats.imported,
        package_stats.skipped,
        package_stats.bad,
    ) == (12, 10, 1, 1)
    assert "99999-11A-02" in package_stats.problems[0]


def test_excluded_and_malformed_rows_are_not_imported(products: dict[str, ImportedProduct]) -> None:
    assert "99999-104" not in products  # NDC_EXCLUDE_FLAG=Y
    assert "99999-105" not in products  # misaligned ingredient lists
    assert "99999-106" not in products  # extra field


def test_single_ingredient_product(products: dict[str, ImportedProduct]) -> None:
    sertraline = products["99999-101"]
    assert sertraline.ingredients == (
        Ingredient("sertraline", Decimal(50), "MG", "sertraline hydrochloride"),
    )
    assert sertraline.dose_form == "Oral Tablet"  # TABLET, FILM COATED
    assert sertraline.route == "oral"
    assert sertraline.classes == {"ssri"}
    assert sertraline.pharm_classes == ("Serotonin Uptake Inhibitors [MoA]",)
    assert sertraline.dea_schedule is None
    assert sertraline.package_ndcs == ("99999010130", "99999010190")
    assert sertraline.name == "sertraline hydrochloride 50 MG Oral Tablet"


def test_multi_ingredient_cii_product(products: dict[str, ImportedProduct]) -> None:
    norco = products["99999-1020"]
    assert [(i.name, i.strength, i.unit) for i in norco.ingredients] == [
        ("hydrocodone", Decimal(5), "MG"),
        ("acetaminophen", Decimal(325), "MG"),
    ]
    assert norco.dea_schedule == "C48675"
    assert norco.package_ndcs == ("99999102001",)  # 5-4-1 package code, padded
    assert norco.name == "acetaminophen 325 MG / hydrocodone bitartrate 5 MG Oral Tablet"


def test_units_and_classes_are_mapped(products: dict[str, ImportedProduct]) -> None:
    suspension = products["99999-107"]
    assert suspension.ingredients[0].strength == Decimal(80)  # 400 mg/5mL
    assert suspension.ingredients[0].unit == "MG/ML"
    assert suspension.dose_form == "Oral Suspension"
    assert suspension.labeler == "Laboratório Fictício Ltda"
    ibuprofen = products["99999-109"]
    assert ibuprofen.classes == {"nsaid"}
    assert "Anti-Inflammatory Agents, Non-Steroidal [CS]" in ibuprofen.pharm_classes
    assert "Fictional Test Class [EPC]" in ibuprofen.pharm_classes
    loperamide = products["99999-110"]
    assert "opioid" not in loperamide.classes
    assert "Opioid Agonist [EPC]" in loperamide.pharm_classes


def test_trailing_empty_fields_and_latin1_lines(products: dict[str, ImportedProduct]) -> None:
    alprazolam = products["99999-111"]
    assert alprazolam.dea_schedule == "C48677"
    assert alprazolam.classes == {"benzodiazepine"}
    assert products["99999-112"].labeler == "Pharmacéutique Fictive S.A."


def test_packages(package_stats: ImportStats) -> None:
    packages = list(read_packages(_lines(FIXTURES / "package.txt")))
    by_code = {package.ndc: package for package in packages}
    assert by_code["99999011012"] == ImportedPackage(
        product_id="99999-110_00000000-0000-4000-8000-000000000110",
        product_ndc="99999-110",
        ndc="99999011012",
        description="12 CAPSULE in 1 BLISTER PACK (99999-110-12)",
        sample=True,
    )
    assert "99999010430" not in by_code  # excluded package


def test_imported_products_join_the_reference(products: dict[str, ImportedProduct]) -> None:
    bundled = DrugReference.bundled()
    reference = bundled.with_products(products.values())
    assert bundled.by_ndc("99999-101-30") is None  # the bundled reference is unchanged
    sertraline = reference.by_ndc("99999-101-30")
    assert sertraline is not None
    assert sertraline.name == "sertraline 50 MG Oral Tablet"  # merged into the bundled drug
    assert reference.by_ndc("9999910130") == sertraline  # unhyphenated 10-digit, one reading known
    norco = reference.by_ndc("99999-1020-1")
    assert norco is not None
    assert norco.schedule_label == "C-II"
    assert norco.max_daily_for("hydrocodone") is not None
    oxycodone = reference.by_ndc("99999010310")
    assert oxycodone is not None
    assert oxycodone.name == "oxycodone hydrochloride 7.5 MG Oral Tablet"  # new drug
    assert oxycodone.classes == {"opioid"}
    assert reference.by_description("oxycodone 7.5 mg tablet") == oxycodone
    cream = reference.by_ndc("99999-108-15")
    assert cream is not None
    assert cream.name == "ketoconazole 20 MG/ML Topical Cream"
    assert "cyp3a4_inhibitor" not in cream.classes  # local route
    assert reference.identify("99999-109-05", None, "").method == "ndc"
    assert len(reference.drugs) == len(bundled.drugs) + 1


def test_missing_column_is_a_format_error() -> None:
    with pytest.raises(FdaFormatError, match="PHARM_CLASSES"):
        list(read_products(["PRODUCTID\tPRODUCTNDC\n"]))
    with pytest.raises(FdaFormatError, match="empty"):
        list(read_packages([]))


def test_decode_line_tolerates_latin1() -> None:
    assert decode_line("é".encode()) == "é"
    assert decode_line("é".encode("latin-1")) == "é"
    assert decode_line("text") == "text"


def test_text_lines_work_too() -> None:
    text = (FIXTURES / "package.txt").read_bytes().decode("utf-8").splitlines()
    assert len(list(read_packages(text))) == 10
