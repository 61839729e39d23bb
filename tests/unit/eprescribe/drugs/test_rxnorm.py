"""RxNorm RRF import: the reader on tiny release files the tests write (invented RxCUIs), and
the merge of its drugs into the reference."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from eprescribe.drugs import (
    SCHEDULE_CODES,
    Drug,
    DrugReference,
    Ingredient,
    RxNormDrug,
    RxNormFormatError,
    RxNormStats,
    read_rxnorm,
)
from eprescribe.drugs.rxnorm import clinical_drug
from tests.support import rxnorm_release as rx


def _lines(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from handle


def _read(
    release: rx.Release, tmp_path: Path, stats: RxNormStats | None = None
) -> dict[str, RxNormDrug]:
    directory = release.write(tmp_path / "rrf")
    drugs = read_rxnorm(
        _lines(directory / "RXNCONSO.RRF"),
        _lines(directory / "RXNREL.RRF"),
        _lines(directory / "RXNSAT.RRF"),
        stats,
    )
    return {drug.rxcui: drug for drug in drugs}


@pytest.fixture
def stats() -> RxNormStats:
    return RxNormStats()


@pytest.fixture
def drugs(tmp_path: Path, stats: RxNormStats) -> dict[str, RxNormDrug]:
    return _read(rx.release(), tmp_path, stats)


@pytest.fixture
def imported(reference: DrugReference, drugs: dict[str, RxNormDrug]) -> DrugReference:
    return reference.with_rxnorm(drugs.values())


def _by_rxcui(reference: DrugReference, rxcui: str) -> Drug:
    found = reference.by_rxcui(rxcui)
    assert found is not None, rxcui
    return found


# --- reading ---


def test_clinical_drug_with_its_ingredient_form_and_ndc(drugs: dict[str, RxNormDrug]) -> None:
    assert drugs[rx.SERTRALINE_150] == RxNormDrug(
        rxcui=rx.SERTRALINE_150,
        tty="SCD",
        name=rx.SERTRALINE_150_NAME,  # the RXNORM atom, not the PSN or another source's name
        ingredients=("sertraline",),
        dose_form="Oral Tablet",
        ndcs=(rx.SERTRALINE_NDC,),  # not VANDF's, not a suppressed one, not a malformed one
    )


def test_branded_drug_names_its_brand_and_clinical_drug(drugs: dict[str, RxNormDrug]) -> None:
    zoloft = drugs[rx.ZOLOFT_150]
    assert (zoloft.tty, zoloft.brand, zoloft.clinical_rxcui) == ("SBD", "Zoloft", rx.SERTRALINE_150)
    assert zoloft.ingredients == ("sertraline",)  # through its SCD
    assert zoloft.ndcs == (rx.ZOLOFT_NDC,)


def test_packs_list_what_they_contain(drugs: dict[str, RxNormDrug]) -> None:
    assert drugs[rx.SERTRALINE_PACK].contents == (rx.SERTRALINE_150,)
    assert drugs[rx.MIXED_PACK].contents == (rx.SERTRALINE_150, rx.ZORBITIDE_10)


def test_ingredients_of_several_components_and_dea_schedule(
    drugs: dict[str, RxNormDrug],
) -> None:
    combination = drugs[rx.OXYCODONE_APAP]
    assert combination.ingredients == ("acetaminophen", "oxycodone")
    assert combination.dea_schedule == SCHEDULE_CODES["CII"]
    assert drugs[rx.OXYCODONE_20].dea_schedule is None  # the release says nothing


def test_suppressed_concepts_relations_and_other_sources_are_left_out(
    drugs: dict[str, RxNormDrug], stats: RxNormStats
) -> None:
    assert rx.SUPPRESSED_SCD not in drugs
    # A suppressed relation and a VANDF one would have given these drugs sertraline.
    assert drugs[rx.ZORBITIDE_10].ingredients == ("zorbitide",)
    assert drugs[rx.ONDANSETRON_4_ODT].ingredients == ("ondansetron",)
    assert stats.bad_ndcs == 1
    assert stats.by_tty == {"SCD": 5, "SBD": 1, "GPCK": 2}


@pytest.mark.parametrize("row", [0, 1], ids=["as-written", "inverse-name"])
def test_either_row_of_a_relation_is_enough(tmp_path: Path, row: int) -> None:
    """RXNREL writes each relation twice; each row alone reads the same way round."""
    release = rx.release()
    release.rel = [
        rows[row]
        for rows in (
            rx.both(rx.SERTRALINE_150_SCDC, "has_ingredient", rx.SERTRALINE_IN),
            rx.both(rx.SERTRALINE_150, "consists_of", rx.SERTRALINE_150_SCDC),
            rx.both(rx.SERTRALINE_150, "has_dose_form", rx.TABLET_DF),
            rx.both(rx.ZOLOFT_150, "tradename_of", rx.SERTRALINE_150),
            rx.both(rx.ZOLOFT_150, "has_ingredient", rx.ZOLOFT_BN),
        )
    ]
    drugs = _read(release, tmp_path)
    assert drugs[rx.SERTRALINE_150].ingredients == ("sertraline",)
    assert drugs[rx.SERTRALINE_150].dose_form == "Oral Tablet"
    assert drugs[rx.ZOLOFT_150].clinical_rxcui == rx.SERTRALINE_150
    assert drugs[rx.ZOLOFT_150].brand == "Zoloft"


def test_a_relation_is_read_as_rxcui2_having_it_to_rxcui1(tmp_path: Path) -> None:
    """``RXCUI1=SCD|consists_of|RXCUI2=SCDC`` says the component consists of the drug: the
    drug gets nothing from it (reading it the other way round would give it sertraline)."""
    release = rx.release()
    release.rel = [
        *rx.both(rx.SERTRALINE_150_SCDC, "has_ingredient", rx.SERTRALINE_IN),
        rx.rel(rx.SERTRALINE_150, "consists_of", rx.SERTRALINE_150_SCDC),
        rx.rel(rx.SERTRALINE_150, "ingredient_of", rx.ZOLOFT_150),  # SBD ingredient_of SCD
    ]
    drugs = _read(release, tmp_path)
    assert drugs[rx.SERTRALINE_150].ingredients == ()
    assert drugs[rx.SERTRALINE_150].brand is None


@pytest.mark.parametrize(
    ("value", "label"),
    [("CII", "CII"), ("C-IV", "CIV"), ("CIIIN", "CIII"), ("cv", "CV"), ("2", None), ("", None)],
)
def test_dcsa_values(tmp_path: Path, value: str, label: str | None) -> None:
    release = rx.release()
    release.sat = [rx.sat(rx.ZORBITIDE_10, "DCSA", value, sab="MTHSPL")]
    drug = _read(release, tmp_path)[rx.ZORBITIDE_10]
    assert drug.dea_schedule == (SCHEDULE_CODES[label] if label else None)


def test_labels_that_disagree_keep_the_strictest_schedule(tmp_path: Path) -> None:
    release = rx.release()
    release.sat = [
        rx.sat(rx.ZORBITIDE_10, "DCSA", "CIV", sab="MTHSPL"),
        rx.sat(rx.ZORBITIDE_10, "DCSA", "CII", sab="MTHSPL"),
    ]
    assert _read(release, tmp_path)[rx.ZORBITIDE_10].dea_schedule == SCHEDULE_CODES["CII"]


@pytest.mark.parametrize("file", ["conso", "rel", "sat"])
def test_a_line_that_is_not_rrf_stops_the_read(tmp_path: Path, file: str) -> None:
    release = rx.release()
    rows = getattr(release, file)
    rows.insert(1, rows[0].rsplit("|", 3)[0] + "|")  # two fields short
    with pytest.raises(RxNormFormatError, match=r"RXN\w+\.RRF line 2: \d+ fields"):
        _read(release, tmp_path)


def test_a_line_that_is_not_utf8_stops_the_read(tmp_path: Path) -> None:
    directory = rx.release().write(tmp_path / "rrf")
    with (directory / "RXNCONSO.RRF").open("ab") as handle:
        handle.write(rx.conso("9000999", "IN", "caf\xe9").encode("latin-1") + b"\n")
    with pytest.raises(RxNormFormatError, match="not UTF-8"):
        read_rxnorm(_lines(directory / "RXNCONSO.RRF"), [], [])


def test_lines_without_the_final_pipe_and_with_crlf_are_read(tmp_path: Path) -> None:
    conso = [rx.conso(rx.SERTRALINE_IN, "IN", "sertraline")[:-1] + "\r\n"]
    assert read_rxnorm(conso, [], []) == []  # an ingredient alone is no drug, but no error


# --- names to the reference's drugs ---


def test_clinical_drug_reads_strengths_and_maps_ingredients(
    reference: DrugReference, drugs: dict[str, RxNormDrug]
) -> None:
    drug = clinical_drug(drugs[rx.SERTRALINE_150], reference.vocabulary)
    assert drug is not None
    assert drug.ingredients == (Ingredient("sertraline", Decimal(150), "MG"),)
    assert (drug.route, drug.dose_form, drug.rxcui) == ("oral", "Oral Tablet", rx.SERTRALINE_150)
    assert "ssri" in drug.classes
    assert drug.max_daily  # the vocabulary's oral maximum
    unknown = clinical_drug(drugs[rx.ZORBITIDE_10], reference.vocabulary)
    assert unknown is not None
    assert unknown.ingredients == (Ingredient("zorbitide", Decimal(10), "MG", "zorbitide acetate"),)
    assert unknown.classes == frozenset()


def test_clinical_drug_with_a_quantity_and_an_unknown_form(reference: DrugReference) -> None:
    syringe = RxNormDrug(
        "9000401",
        "SCD",
        "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe",
        ("enoxaparin",),
        dose_form="Prefilled Syringe",
    )
    drug = clinical_drug(syringe, reference.vocabulary)
    assert drug is not None
    assert drug.ingredients == (
        Ingredient("enoxaparin", Decimal(100), "MG/ML", "enoxaparin sodium"),
    )
    assert drug.route == "injection"
    odd = RxNormDrug("9000402", "SCD", "zorbitide 5 MG Medicated Pad", ("zorbitide",), None, "Pad")
    fallback = clinical_drug(odd, reference.vocabulary)
    assert fallback is not None
    assert fallback.ingredients == (Ingredient("zorbitide", None, None),)  # name unread
    assert clinical_drug(RxNormDrug("9000403", "SCD", "x"), reference.vocabulary) is None


# --- the merged reference ---


def test_identify_by_rxcui_ndc_and_name(imported: DrugReference) -> None:
    by_rxcui = imported.identify(None, rx.SERTRALINE_150, "")
    assert by_rxcui.method == "rxnorm"
    assert by_rxcui.drug is not None
    assert by_rxcui.drug.name == rx.SERTRALINE_150_NAME
    assert imported.identify(rx.SERTRALINE_NDC, None, "").drug == by_rxcui.drug
    described = imported.identify(None, None, "Sertraline 150 mg tablet")
    assert (described.drug, described.method) == (by_rxcui.drug, "description")


def test_brands_and_single_drug_packs_name_their_clinical_drug(imported: DrugReference) -> None:
    sertraline = imported.by_rxcui(rx.SERTRALINE_150)
    assert sertraline is not None
    assert imported.by_rxcui(rx.ZOLOFT_150) == sertraline
    assert imported.by_rxcui(rx.SERTRALINE_PACK) == sertraline
    assert imported.by_ndc(rx.ZOLOFT_NDC) == sertraline
    assert imported.by_ndc(rx.PACK_NDC) == sertraline
    assert sertraline.rxcui == rx.SERTRALINE_150
    assert set(sertraline.other_rxcuis) == {rx.ZOLOFT_150, rx.SERTRALINE_PACK}


def test_a_known_drug_gets_its_rxcui_and_keeps_what_the_reference_knew(
    reference: DrugReference, imported: DrugReference
) -> None:
    bundled = reference.by_name(rx.ODT_NAME)
    assert bundled is not None
    assert bundled.rxcui is None
    known = imported.identify(None, rx.ONDANSETRON_4_ODT, "").drug
    assert known is not None
    assert known.name == bundled.name
    assert (known.rxcui, known.ndcs) == (rx.ONDANSETRON_4_ODT, (rx.ODT_NDC,))
    assert (known.classes, known.max_daily) == (bundled.classes, bundled.max_daily)
    assert len(imported.drugs) == len(reference.drugs) + 5  # sertraline 150, zorbitide,
    # oxycodone/acetaminophen, oxycodone 20 and the mixed pack


def test_an_scd_with_the_same_identity_joins_the_known_drug(reference: DrugReference) -> None:
    syringe = RxNormDrug(
        "9000401",
        "SCD",
        "0.4 ML enoxaparin sodium 100 MG/ML Prefilled Syringe",
        ("enoxaparin",),
        dose_form="Prefilled Syringe",
        ndcs=("99999090701",),
    )
    merged = reference.with_rxnorm([syringe])
    drug = merged.by_rxcui("9000401")
    assert drug is not None
    assert drug.name == "enoxaparin sodium 100 MG/ML Prefilled Syringe"
    assert merged.by_ndc("99999090701") == drug


def test_imported_ingredients_known_to_the_vocabulary_get_the_checks(
    imported: DrugReference, drug: Callable[[str], Drug]
) -> None:
    sertraline_150 = _by_rxcui(imported, rx.SERTRALINE_150)
    sertraline_50 = drug("sertraline 50 MG Oral Tablet")
    maoi = drug("phenelzine sulfate 15 MG Oral Tablet")
    assert sertraline_150.classes == sertraline_50.classes
    interactions = imported.interactions(sertraline_150, maoi)
    assert interactions
    assert interactions == imported.interactions(sertraline_50, maoi)
    assert imported.shared_ingredients(sertraline_150, sertraline_50) == {"sertraline"}
    allergy = imported.resolve_allergen("sertraline")
    assert imported.allergy_matches(allergy, sertraline_150)


def test_schedules_from_the_release_or_from_drugs_of_the_same_ingredients(
    imported: DrugReference,
) -> None:
    combination = _by_rxcui(imported, rx.OXYCODONE_APAP)
    plain = _by_rxcui(imported, rx.OXYCODONE_20)
    unknown = _by_rxcui(imported, rx.ZORBITIDE_10)
    assert combination.schedule_label == "C-II"  # DCSA
    assert plain.schedule_label == "C-II"  # every known oxycodone drug is C-II
    assert unknown.dea_schedule is None
    assert combination.ingredient_names == {"acetaminophen", "oxycodone"}


def test_a_pack_of_several_drugs_has_all_their_ingredients(imported: DrugReference) -> None:
    pack = imported.by_rxcui(rx.MIXED_PACK)
    assert pack is not None
    assert pack.name == rx.MIXED_PACK_NAME
    assert pack.ingredients == (
        Ingredient("sertraline", None, None),
        Ingredient("zorbitide", None, None),
    )
    assert "ssri" in pack.classes
    assert pack.max_daily == ()


def test_the_bundled_reference_is_unchanged_and_fda_products_still_merge(
    reference: DrugReference, imported: DrugReference
) -> None:
    assert all(d.rxcui is None and not d.other_rxcuis for d in reference.drugs)
    assert reference.by_rxcui(rx.SERTRALINE_150) is None
    again = imported.with_products([])
    assert again.by_rxcui(rx.ZOLOFT_150) == imported.by_rxcui(rx.ZOLOFT_150)
