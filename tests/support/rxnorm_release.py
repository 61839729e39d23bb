"""A tiny RxNorm release in RRF, written by the tests themselves.

Every RxCUI here is invented (the 9000000 range) and every NDC uses the fictional 99999 labeler:
the files only have the shape of NLM's. Relations are written the way RXNREL writes them:
``RXCUI1|..|RELA|RXCUI2`` states "RXCUI2 RELA RXCUI1", once per direction unless a test asks
for one direction only.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

# Fictional concepts: ingredients the bundled vocabulary knows (sertraline, ondansetron,
# oxycodone, acetaminophen) and one it does not (the made-up "zorbitide").
SERTRALINE_IN = "9000001"
ONDANSETRON_IN = "9000002"
ZORBITIDE_IN = "9000003"
OXYCODONE_IN = "9000004"
ACETAMINOPHEN_IN = "9000005"
TABLET_DF = "9000011"
ODT_DF = "9000012"
ZOLOFT_BN = "9000021"
SERTRALINE_150_SCDC = "9000031"
ONDANSETRON_4_SCDC = "9000032"
ZORBITIDE_SCDC = "9000033"
OXYCODONE_SCDC = "9000034"
APAP_SCDC = "9000035"
OXYCODONE_20_SCDC = "9000036"
SERTRALINE_150 = "9000101"  # SCD the bundled list lacks
ONDANSETRON_4_ODT = "9000102"  # SCD the bundled list has by name
ZORBITIDE_10 = "9000103"  # SCD of an ingredient unknown to the vocabulary
OXYCODONE_APAP = "9000104"  # SCD with two ingredients, scheduled by DCSA
SUPPRESSED_SCD = "9000105"
OXYCODONE_20 = "9000106"  # SCD without DCSA: scheduled like the known oxycodone drugs
ZOLOFT_150 = "9000201"  # SBD of SERTRALINE_150
SERTRALINE_PACK = "9000301"  # GPCK of SERTRALINE_150 alone
MIXED_PACK = "9000302"  # GPCK of two drugs

SERTRALINE_150_NAME = "sertraline 150 MG Oral Tablet"
ODT_NAME = "ondansetron 4 MG Disintegrating Oral Tablet"
ZORBITIDE_NAME = "zorbitide acetate 10 MG Oral Tablet"
OXYCODONE_APAP_NAME = "acetaminophen 300 MG / oxycodone hydrochloride 7.5 MG Oral Tablet"
OXYCODONE_20_NAME = "oxycodone hydrochloride 20 MG Oral Tablet"
MIXED_PACK_NAME = (
    "{7 (sertraline 150 MG Oral Tablet) / 7 (zorbitide acetate 10 MG Oral Tablet) } Pack"
)
SERTRALINE_NDC = "99999090101"
ZOLOFT_NDC = "99999090201"
ODT_NDC = "99999090301"
ZORBITIDE_NDC = "99999090401"
OXYCODONE_NDC = "99999090501"
PACK_NDC = "99999090601"


def conso(rxcui: str, tty: str, name: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    fields = [rxcui, "ENG", "", "", "", "", "", f"A{rxcui}", "", "", "", sab, tty, rxcui, name]
    return "|".join([*fields, "", suppress, ""]) + "|"


def rel(rxcui1: str, rela: str, rxcui2: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    fields = [rxcui1, "", "CUI", "RO", rxcui2, "", "CUI", rela, "", "", sab, "", "", "", suppress]
    return "|".join([*fields, ""]) + "|"


def sat(rxcui: str, atn: str, atv: str, *, sab: str = "RXNORM", suppress: str = "N") -> str:
    fields = [rxcui, "", "", "", "CUI", rxcui, "", "", atn, sab, atv, suppress, ""]
    return "|".join(fields) + "|"


_INVERSES = {
    "consists_of": "constitutes",
    "has_ingredient": "ingredient_of",
    "has_dose_form": "dose_form_of",
    "tradename_of": "has_tradename",
    "contains": "contained_in",
}


def both(subject: str, rela: str, target: str) -> list[str]:
    """The two RXNREL rows of "subject RELA target", as NLM writes them."""
    return [rel(target, rela, subject), rel(subject, _INVERSES[rela], target)]


@dataclasses.dataclass
class Release:
    conso: list[str]
    rel: list[str]
    sat: list[str]

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, lines in (("RXNCONSO", self.conso), ("RXNREL", self.rel), ("RXNSAT", self.sat)):
            (directory / f"{name}.RRF").write_text("".join(f"{line}\n" for line in lines))
        return directory


def release() -> Release:
    conso_rows = [
        conso(SERTRALINE_IN, "IN", "sertraline"),
        conso(ONDANSETRON_IN, "IN", "ondansetron"),
        conso(ZORBITIDE_IN, "IN", "zorbitide"),
        conso(OXYCODONE_IN, "IN", "oxycodone"),
        conso(ACETAMINOPHEN_IN, "IN", "acetaminophen"),
        conso(TABLET_DF, "DF", "Oral Tablet"),
        conso(ODT_DF, "DF", "Disintegrating Oral Tablet"),
        conso(ZOLOFT_BN, "BN", "Zoloft"),
        conso(SERTRALINE_150_SCDC, "SCDC", "sertraline 150 MG"),
        conso(ONDANSETRON_4_SCDC, "SCDC", "ondansetron 4 MG"),
        conso(ZORBITIDE_SCDC, "SCDC", "zorbitide acetate 10 MG"),
        conso(OXYCODONE_SCDC, "SCDC", "oxycodone hydrochloride 7.5 MG"),
        conso(APAP_SCDC, "SCDC", "acetaminophen 300 MG"),
        conso(OXYCODONE_20_SCDC, "SCDC", "oxycodone hydrochloride 20 MG"),
        conso(SERTRALINE_150, "SCD", SERTRALINE_150_NAME),
        conso(SERTRALINE_150, "PSN", "sertraline 150 MG Tablet"),
        conso(SERTRALINE_150, "SCD", "SERTRALINE 150 MG ORAL TABLET", sab="VANDF"),
        conso(ONDANSETRON_4_ODT, "SCD", ODT_NAME),
        conso(ZORBITIDE_10, "SCD", ZORBITIDE_NAME),
        conso(OXYCODONE_APAP, "SCD", OXYCODONE_APAP_NAME),
        conso(OXYCODONE_20, "SCD", OXYCODONE_20_NAME),
        conso(SUPPRESSED_SCD, "SCD", "sertraline 175 MG Oral Tablet", suppress="O"),
        conso(ZOLOFT_150, "SBD", f"{SERTRALINE_150_NAME} [Zoloft]"),
        conso(SERTRALINE_PACK, "GPCK", "{30 (sertraline 150 MG Oral Tablet) } Pack"),
        conso(MIXED_PACK, "GPCK", MIXED_PACK_NAME),
    ]
    rel_rows = [
        *both(SERTRALINE_150_SCDC, "has_ingredient", SERTRALINE_IN),
        *both(ONDANSETRON_4_SCDC, "has_ingredient", ONDANSETRON_IN),
        *both(ZORBITIDE_SCDC, "has_ingredient", ZORBITIDE_IN),
        *both(OXYCODONE_SCDC, "has_ingredient", OXYCODONE_IN),
        *both(APAP_SCDC, "has_ingredient", ACETAMINOPHEN_IN),
        *both(SERTRALINE_150, "consists_of", SERTRALINE_150_SCDC),
        *both(ONDANSETRON_4_ODT, "consists_of", ONDANSETRON_4_SCDC),
        *both(ZORBITIDE_10, "consists_of", ZORBITIDE_SCDC),
        *both(OXYCODONE_APAP, "consists_of", OXYCODONE_SCDC),
        *both(OXYCODONE_APAP, "consists_of", APAP_SCDC),
        *both(OXYCODONE_20_SCDC, "has_ingredient", OXYCODONE_IN),
        *both(OXYCODONE_20, "consists_of", OXYCODONE_20_SCDC),
        *both(OXYCODONE_20, "has_dose_form", TABLET_DF),
        *both(SERTRALINE_150, "has_dose_form", TABLET_DF),
        *both(ONDANSETRON_4_ODT, "has_dose_form", ODT_DF),
        *both(ZORBITIDE_10, "has_dose_form", TABLET_DF),
        *both(OXYCODONE_APAP, "has_dose_form", TABLET_DF),
        *both(ZOLOFT_150, "has_dose_form", TABLET_DF),
        *both(ZOLOFT_150, "tradename_of", SERTRALINE_150),
        *both(ZOLOFT_150, "has_ingredient", ZOLOFT_BN),
        *both(SERTRALINE_PACK, "contains", SERTRALINE_150),
        *both(MIXED_PACK, "contains", SERTRALINE_150),
        *both(MIXED_PACK, "contains", ZORBITIDE_10),
        rel(SERTRALINE_150_SCDC, "consists_of", ZORBITIDE_10, suppress="O"),
        rel(SERTRALINE_150_SCDC, "consists_of", ONDANSETRON_4_ODT, sab="VANDF"),
    ]
    sat_rows = [
        sat(SERTRALINE_150, "NDC", SERTRALINE_NDC),
        sat(ZOLOFT_150, "NDC", ZOLOFT_NDC),
        sat(ONDANSETRON_4_ODT, "NDC", ODT_NDC),
        sat(ZORBITIDE_10, "NDC", ZORBITIDE_NDC),
        sat(OXYCODONE_APAP, "NDC", OXYCODONE_NDC),
        sat(OXYCODONE_APAP, "DCSA", "CII", sab="MTHSPL"),
        sat(SERTRALINE_PACK, "NDC", PACK_NDC),
        sat(SERTRALINE_150, "NDC", "99999090199", sab="VANDF"),
        sat(SERTRALINE_150, "NDC", "99999090198", suppress="O"),
        sat(SERTRALINE_150, "NDC", "not-an-ndc"),
        sat(SERTRALINE_150, "RXN_HUMAN_DRUG", "US"),
    ]
    return Release(conso_rows, rel_rows, sat_rows)
