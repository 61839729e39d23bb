"""The drug classes the hub measures adherence of, as the Pharmacy Quality Alliance's PDC
measures group them, read from the drug reference's class vocabulary
(``eprescribe/drugs/data/classes.json``, mapped to FDA pharmacologic classes):

- **statins** (PDC-STA): the vocabulary's ``statin``;
- **RAS antagonists** (PDC-RASA): ``ace_inhibitor`` and ``arb``, and the direct renin inhibitor
  aliskiren, which the vocabulary has no class for (listed by RxNorm ingredient);
- **diabetes medications** (PDC-DR, non-insulin): ``biguanide``, ``sulfonylurea``,
  ``thiazolidinedione``, ``dpp4_inhibitor``, ``sglt2_inhibitor``, ``glp1_agonist``, and the
  meglitinides repaglinide and nateglinide (no class in the vocabulary: listed by ingredient).
  Insulin is not one of them.

A drug of several ingredients belongs to each class one of its ingredients does (an
amlodipine / atorvastatin tablet is a statin); its ``drug`` key in a class is the names of
those ingredients (the RAS antagonist of hydrochlorothiazide / lisinopril is lisinopril), so
switching between products of one ingredient does not count as switching drugs.

The measures' own exclusions (a patient on insulin left out of PDC-DR, on sacubitril /
valsartan out of PDC-RASA, hospice, end-stage renal disease) are not applied here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from eprescribe.drugs import Drug, Vocabulary

STATINS = "statins"
RAS_ANTAGONISTS = "ras_antagonists"
DIABETES = "diabetes"
#: the measured classes, in the order the hub lists them
MEASURED = (DIABETES, RAS_ANTAGONISTS, STATINS)

#: the vocabulary's class ids that belong to a measured class
BY_CLASS: Mapping[str, str] = MappingProxyType(
    {
        "statin": STATINS,
        "ace_inhibitor": RAS_ANTAGONISTS,
        "arb": RAS_ANTAGONISTS,
        "biguanide": DIABETES,
        "sulfonylurea": DIABETES,
        "thiazolidinedione": DIABETES,
        "dpp4_inhibitor": DIABETES,
        "sglt2_inhibitor": DIABETES,
        "glp1_agonist": DIABETES,
    }
)
#: RxNorm ingredients of a measured class that the vocabulary gives no class for
BY_INGREDIENT: Mapping[str, str] = MappingProxyType(
    {
        "aliskiren": RAS_ANTAGONISTS,  # direct renin inhibitor
        "repaglinide": DIABETES,  # meglitinide
        "nateglinide": DIABETES,  # meglitinide
    }
)

__all__ = [
    "BY_CLASS",
    "BY_INGREDIENT",
    "DIABETES",
    "MEASURED",
    "RAS_ANTAGONISTS",
    "STATINS",
    "measured_classes",
]


def measured_classes(drug: Drug, vocabulary: Vocabulary) -> dict[str, str]:
    """The measured classes ``drug`` belongs to, each with the drug's key in it (its
    ingredients of that class, sorted and joined with `` / ``); empty for the rest."""
    found: dict[str, set[str]] = {}
    for ingredient in drug.ingredient_names:
        for measured in _classes_of(ingredient, vocabulary):
            found.setdefault(measured, set()).add(ingredient)
    return {measured: " / ".join(sorted(names)) for measured, names in sorted(found.items())}


def _classes_of(ingredient: str, vocabulary: Vocabulary) -> set[str]:
    info = vocabulary.ingredients.get(ingredient)
    classes = {BY_CLASS[c] for c in info.classes if c in BY_CLASS} if info else set()
    listed = BY_INGREDIENT.get(ingredient)
    return classes | {listed} if listed else classes
