"""Value objects of the drug reference: ingredients, drugs, classes, interactions, allergens.

Strengths are ``Decimal`` with RxNorm-style units (``MG``, ``MG/ML``, ``UNT/ML``, ``MG/HR``,
``MG/ACTUAT``, ``MEQ``). DEA schedules are the NCI codes SCRIPT carries in
``DEASchedule/Code``.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Final, Literal

__all__ = [
    "SCHEDULE_CODES",
    "SCHEDULE_LABELS",
    "Allergen",
    "AllergyMatch",
    "AuxiliaryWarning",
    "CrossReactivity",
    "Drug",
    "DrugClass",
    "Identification",
    "Ingredient",
    "Interaction",
    "InteractionSide",
    "MaxDose",
    "Severity",
]

#: NCI code of each DEA schedule, by the short label used in data files and the FDA NDC file.
SCHEDULE_CODES: Final = {
    "CI": "C48672",
    "CII": "C48675",
    "CIII": "C48676",
    "CIV": "C48677",
    "CV": "C48679",
}
#: Display label of each NCI schedule code.
SCHEDULE_LABELS: Final = {
    "C48672": "C-I",
    "C48675": "C-II",
    "C48676": "C-III",
    "C48677": "C-IV",
    "C48679": "C-V",
}

Severity = Literal["hard_stop", "warning"]
_SEVERITIES: Final = frozenset({"hard_stop", "warning"})


@dataclasses.dataclass(frozen=True, slots=True)
class Ingredient:
    """One active ingredient of a drug.

    ``name`` is the RxNorm ingredient (IN), lowercase. ``basis`` is the precise ingredient the
    strength refers to when that is a salt or ester (``metformin hydrochloride``), because the
    same number means a different amount of active moiety.
    """

    name: str
    strength: Decimal | None
    unit: str | None
    basis: str | None = None

    def __post_init__(self) -> None:
        if not self.name or self.name != self.name.lower():
            raise ValueError(f"ingredient name must be lowercase and non-empty: {self.name!r}")
        if (self.strength is None) != (self.unit is None):
            raise ValueError(f"{self.name}: strength and unit go together")
        if self.strength is not None and self.strength <= 0:
            raise ValueError(f"{self.name}: strength must be positive")


@dataclasses.dataclass(frozen=True, slots=True)
class MaxDose:
    """Adult maximum daily dose of one ingredient: ``amount`` ``unit`` per day."""

    ingredient: str
    amount: Decimal
    unit: str

    def __post_init__(self) -> None:
        if self.amount <= 0:
            raise ValueError(f"{self.ingredient}: maximum daily dose must be positive")


@dataclasses.dataclass(frozen=True, slots=True)
class Drug:
    """A clinical drug: ingredients with strengths, dose form and route (an RxNorm SCD).

    ``classes`` are ids of the class vocabulary. ``pharm_classes`` keeps FDA class strings of
    imported products that the vocabulary does not map, so nothing the FDA said is lost.
    ``rxcui`` is the drug's own RxCUI (its SCD); ``other_rxcuis`` are RxCUIs of an RxNorm import
    that name the same clinical drug: its branded drugs (SBD) and packs of it alone, so a
    prescription coded with any of them finds it.
    """

    name: str
    ingredients: tuple[Ingredient, ...]
    dose_form: str
    route: str
    classes: frozenset[str]
    dea_schedule: str | None
    max_daily: tuple[MaxDose, ...] = ()
    rxcui: str | None = None
    ndcs: tuple[str, ...] = ()
    pharm_classes: tuple[str, ...] = ()
    other_rxcuis: tuple[str, ...] = ()
    #: made once: every pair the checks compare asks for it
    _ingredient_names: frozenset[str] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.ingredients:
            raise ValueError(f"{self.name}: a drug needs at least one ingredient")
        names = frozenset(ingredient.name for ingredient in self.ingredients)
        object.__setattr__(self, "_ingredient_names", names)
        if self.dea_schedule is not None and self.dea_schedule not in SCHEDULE_LABELS:
            raise ValueError(f"{self.name}: unknown DEA schedule code {self.dea_schedule!r}")

    @property
    def ingredient_names(self) -> frozenset[str]:
        return self._ingredient_names

    @property
    def is_controlled(self) -> bool:
        return self.dea_schedule is not None

    @property
    def schedule_label(self) -> str | None:
        """``C-II`` etc., or None for a drug that is not controlled."""
        return None if self.dea_schedule is None else SCHEDULE_LABELS[self.dea_schedule]

    def max_daily_for(self, ingredient: str) -> MaxDose | None:
        return next((dose for dose in self.max_daily if dose.ingredient == ingredient), None)


@dataclasses.dataclass(frozen=True, slots=True)
class DrugClass:
    """An entry of the class vocabulary.

    ``duplication``: two different drugs sharing it are a therapeutic duplication.
    ``systemic_only``: describes systemic exposure, so products given by a local route do not
    carry it. ``allergy_group``: an allergy to one member counts as an allergy to the class.
    ``epc``: FDA ``PHARM_CLASSES`` strings mapping onto it, except for ``epc_except``
    ingredients.
    """

    id: str
    name: str
    duplication: bool = False
    systemic_only: bool = False
    allergy_group: bool = False
    epc: tuple[str, ...] = ()
    epc_except: frozenset[str] = frozenset()
    synonyms: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class InteractionSide:
    """One side of an interaction: listed ingredients or classes, minus exceptions.

    A drug matches when it has a listed ingredient or class and has neither an excepted
    ingredient nor an excepted class.
    """

    ingredients: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    except_ingredients: frozenset[str] = frozenset()
    except_classes: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.ingredients and not self.classes:
            raise ValueError("an interaction side needs ingredients or classes")

    def matches(self, drug: Drug) -> bool:
        names = drug.ingredient_names
        if names & self.except_ingredients or drug.classes & self.except_classes:
            return False
        return bool(names & self.ingredients or drug.classes & self.classes)


@dataclasses.dataclass(frozen=True, slots=True)
class Interaction:
    """A drug-drug interaction, symmetric: either drug may match either side."""

    id: str
    left: InteractionSide
    right: InteractionSide
    severity: Severity
    message: str
    source: str

    def __post_init__(self) -> None:
        if self.severity not in _SEVERITIES:
            raise ValueError(f"{self.id}: unknown severity {self.severity!r}")


@dataclasses.dataclass(frozen=True, slots=True)
class AuxiliaryWarning:
    """A cautionary statement for the prescription label, and the drugs it applies to.

    Each condition given must hold: an ingredient or a class of the drug among those listed
    (when any are), its route among ``routes`` and its dose form among ``dose_forms`` (when
    given); an excepted ingredient or class rules it out. Classes rather than products, so an
    imported product gets the warnings of the classes its FDA pharmacologic classes map to.
    """

    id: str
    text: str
    ingredients: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()
    routes: frozenset[str] = frozenset()
    dose_forms: frozenset[str] = frozenset()
    except_ingredients: frozenset[str] = frozenset()
    except_classes: frozenset[str] = frozenset()
    source: str = ""

    def __post_init__(self) -> None:
        if not self.text.strip():
            raise ValueError(f"{self.id}: an auxiliary warning needs its text")
        if not (self.ingredients or self.classes or self.routes or self.dose_forms):
            raise ValueError(f"{self.id}: an auxiliary warning must say which drugs it is for")

    def matches(self, drug: Drug) -> bool:
        names = drug.ingredient_names
        if names & self.except_ingredients or drug.classes & self.except_classes:
            return False
        if (self.ingredients or self.classes) and not (
            names & self.ingredients or drug.classes & self.classes
        ):
            return False
        if self.routes and drug.route not in self.routes:
            return False
        return not self.dose_forms or drug.dose_form in self.dose_forms


@dataclasses.dataclass(frozen=True, slots=True)
class CrossReactivity:
    """An allergy to ``allergy_class`` warns on drugs of ``drug_class``."""

    allergy_class: str
    drug_class: str
    severity: Severity
    message: str
    source: str


@dataclasses.dataclass(frozen=True, slots=True)
class Allergen:
    """What an allergy text names: ingredient ids and class ids (both may be empty)."""

    text: str
    ingredients: frozenset[str] = frozenset()
    classes: frozenset[str] = frozenset()

    @property
    def known(self) -> bool:
        return bool(self.ingredients or self.classes)


@dataclasses.dataclass(frozen=True, slots=True)
class AllergyMatch:
    """Why a drug matches an allergen.

    ``kind`` ``ingredient``: the drug contains the ingredient; ``class``: the drug is in a named
    class, or in the allergy group of a named ingredient; ``cross_reactivity``: a lower-certainty
    cross-sensitivity, which carries its own ``severity``. Direct matches leave severity to the
    allergy check.
    """

    kind: Literal["ingredient", "class", "cross_reactivity"]
    term: str
    message: str
    severity: Severity | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Identification:
    """Result of ``DrugReference.identify``: the drug, how it was found, and whether the NDC
    given had a valid format (None when no NDC was given)."""

    drug: Drug | None
    method: Literal["ndc", "rxnorm", "description"] | None
    ndc_valid: bool | None
