"""Drug reference data and the FDA NDC Directory importer (pure domain code).

``DrugReference.bundled()`` gives the curated reference shipped in ``data/``: clinical drugs
named the RxNorm way, a class vocabulary mapped to FDA pharmacologic classes, the ONC
high-priority interactions and other well-established ones, and adult maximum daily doses.
``fda.read_products``/``read_packages``/``merge`` turn the FDA files into products that
``DrugReference.with_products`` adds, with their NDCs; ``rxnorm.read_rxnorm`` turns an RxNorm
release into drugs that ``DrugReference.with_rxnorm`` adds, with their RxCUIs and NDCs.
"""

from __future__ import annotations

from eprescribe.drugs.errors import (
    DrugDataError,
    DrugReferenceError,
    FdaFormatError,
    RxNormFormatError,
)
from eprescribe.drugs.fda import (
    ImportedPackage,
    ImportedProduct,
    ImportStats,
    merge,
    read_packages,
    read_products,
)
from eprescribe.drugs.model import (
    SCHEDULE_CODES,
    SCHEDULE_LABELS,
    Allergen,
    AllergyMatch,
    AuxiliaryWarning,
    CrossReactivity,
    Drug,
    DrugClass,
    Identification,
    Ingredient,
    Interaction,
    InteractionSide,
    MaxDose,
)
from eprescribe.drugs.ndc import ndc_candidates, ndc_format_valid, normalize_ndc
from eprescribe.drugs.reference import DrugReference
from eprescribe.drugs.rxnorm import RxNormDrug, RxNormStats, read_rxnorm
from eprescribe.drugs.vocabulary import Vocabulary

__all__ = [
    "SCHEDULE_CODES",
    "SCHEDULE_LABELS",
    "Allergen",
    "AllergyMatch",
    "AuxiliaryWarning",
    "CrossReactivity",
    "Drug",
    "DrugClass",
    "DrugDataError",
    "DrugReference",
    "DrugReferenceError",
    "FdaFormatError",
    "Identification",
    "ImportStats",
    "ImportedPackage",
    "ImportedProduct",
    "Ingredient",
    "Interaction",
    "InteractionSide",
    "MaxDose",
    "RxNormDrug",
    "RxNormFormatError",
    "RxNormStats",
    "Vocabulary",
    "merge",
    "ndc_candidates",
    "ndc_format_valid",
    "normalize_ndc",
    "read_packages",
    "read_products",
    "read_rxnorm",
]
