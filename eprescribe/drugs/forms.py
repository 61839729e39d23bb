"""Dose forms: the RxNorm names used in drug names, what a prescriber may write for them, and
how FDA NDC Directory ``DOSAGEFORMNAME``/``ROUTENAME`` values map onto them.

A dose form is compared through its ``FormKey``: the kind of unit (tablet, capsule, patch...)
and its release (``ER`` extended, ``DR`` delayed, or None for immediate).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple

__all__ = [
    "DOSE_FORMS",
    "LOCAL_ROUTES",
    "FormKey",
    "description_form",
    "fda_dose_form",
    "fda_route",
    "rxnorm_route",
]


class FormKey(NamedTuple):
    kind: str
    release: str | None = None


#: RxNorm dose forms (DF) the reference understands, with their comparison key.
DOSE_FORMS: Final = {
    "Oral Tablet": FormKey("tablet"),
    "Oral Capsule": FormKey("capsule"),
    "Extended Release Oral Tablet": FormKey("tablet", "ER"),
    "Extended Release Oral Capsule": FormKey("capsule", "ER"),
    "Delayed Release Oral Tablet": FormKey("tablet", "DR"),
    "Delayed Release Oral Capsule": FormKey("capsule", "DR"),
    "Chewable Tablet": FormKey("chewable tablet"),
    "Disintegrating Oral Tablet": FormKey("disintegrating tablet"),
    "Sublingual Tablet": FormKey("sublingual tablet"),
    "Sublingual Film": FormKey("film"),
    "Buccal Film": FormKey("film"),
    "Oral Solution": FormKey("oral solution"),
    "Oral Suspension": FormKey("oral suspension"),
    "Injectable Solution": FormKey("injection"),
    "Injectable Suspension": FormKey("injection"),
    "Injection": FormKey("injection"),
    "Prefilled Syringe": FormKey("prefilled syringe"),
    "Pen Injector": FormKey("pen injector"),
    "Auto-Injector": FormKey("auto-injector"),
    "Transdermal System": FormKey("patch"),
    "Metered Dose Inhaler": FormKey("inhaler"),
    "Dry Powder Inhaler": FormKey("dry powder inhaler"),
    "Inhalation Solution": FormKey("inhalation solution"),
    "Metered Dose Nasal Spray": FormKey("nasal spray"),
    "Nasal Spray": FormKey("nasal spray"),
    "Ophthalmic Solution": FormKey("ophthalmic solution"),
    "Ophthalmic Suspension": FormKey("ophthalmic solution"),
    "Ophthalmic Ointment": FormKey("ophthalmic ointment"),
    "Otic Solution": FormKey("otic solution"),
    "Topical Cream": FormKey("cream"),
    "Topical Ointment": FormKey("ointment"),
    "Topical Gel": FormKey("gel"),
    "Topical Lotion": FormKey("lotion"),
    "Topical Solution": FormKey("topical solution"),
    "Rectal Suppository": FormKey("suppository"),
    "Vaginal Cream": FormKey("vaginal cream"),
}

#: Routes whose products act locally: systemic-only classes are not attached to them.
LOCAL_ROUTES: Final = frozenset(
    {"topical", "ophthalmic", "otic", "vaginal", "nasal", "inhalation", "dental"}
)

# Free-text form phrases; RxNorm's own names are added below, and the longest phrase is tried
# first so "injectable solution" wins over "solution".
_FREE_TEXT_KINDS: Final = (
    ("metered dose inhaler", "inhaler"),
    ("dry powder inhaler", "dry powder inhaler"),
    ("orally disintegrating", "disintegrating tablet"),
    ("prefilled syringe", "prefilled syringe"),
    ("inhalation solution", "inhalation solution"),
    ("nebulizer solution", "inhalation solution"),
    ("ophthalmic solution", "ophthalmic solution"),
    ("ophthalmic suspension", "ophthalmic solution"),
    ("ophthalmic ointment", "ophthalmic ointment"),
    ("sublingual tablet", "sublingual tablet"),
    ("sublingual film", "film"),
    ("buccal film", "film"),
    ("transdermal system", "patch"),
    ("pen injector", "pen injector"),
    ("auto injector", "auto-injector"),
    ("chewable tablet", "chewable tablet"),
    ("nasal spray", "nasal spray"),
    ("eye drops", "ophthalmic solution"),
    ("ear drops", "otic solution"),
    ("oral suspension", "oral suspension"),
    ("oral solution", "oral solution"),
    ("autoinjector", "auto-injector"),
    ("chewable", "chewable tablet"),
    ("chew", "chewable tablet"),
    ("odt", "disintegrating tablet"),
    ("disintegrating", "disintegrating tablet"),
    ("tablets", "tablet"),
    ("tablet", "tablet"),
    ("tabs", "tablet"),
    ("tab", "tablet"),
    ("capsules", "capsule"),
    ("capsule", "capsule"),
    ("caps", "capsule"),
    ("cap", "capsule"),
    ("film", "film"),
    ("suspension", "oral suspension"),
    ("susp", "oral suspension"),
    ("solution", "oral solution"),
    ("syrup", "oral solution"),
    ("elixir", "oral solution"),
    ("liquid", "oral solution"),
    ("injectable", "injection"),
    ("injection", "injection"),
    ("inj", "injection"),
    ("vial", "injection"),
    ("syringe", "prefilled syringe"),
    ("pen", "pen injector"),
    ("patch", "patch"),
    ("transdermal", "patch"),
    ("inhaler", "inhaler"),
    ("hfa", "inhaler"),
    ("mdi", "inhaler"),
    ("diskus", "dry powder inhaler"),
    ("nebulizer", "inhalation solution"),
    ("neb", "inhalation solution"),
    ("cream", "cream"),
    ("ointment", "ointment"),
    ("oint", "ointment"),
    ("gel", "gel"),
    ("lotion", "lotion"),
    ("suppository", "suppository"),
)
_KIND_PHRASES: Final = tuple(
    sorted(
        {
            **{form.lower().replace("-", " "): key.kind for form, key in DOSE_FORMS.items()},
            **dict(_FREE_TEXT_KINDS),
        }.items(),
        key=lambda item: len(item[0].split()),
        reverse=True,
    )
)
_RELEASE_PHRASES: Final = (
    ("extended release", "ER"),
    ("sustained release", "ER"),
    ("controlled release", "ER"),
    ("delayed release", "DR"),
    ("enteric coated", "DR"),
    ("er", "ER"),
    ("xr", "ER"),
    ("xl", "ER"),
    ("sr", "ER"),
    ("cr", "ER"),
    ("la", "ER"),
    ("dr", "DR"),
    ("ec", "DR"),
)
# Release suffixes that also tell the dosing interval (bupropion SR is 12-hourly, XL daily).
_RELEASE_HOURS: Final = {"sr": 12, "xl": 24}
# Where a prescriber's form word only makes sense with a route, the route refines the kind.
_ROUTE_REFINEMENTS: Final = {
    ("oral solution", "ophthalmic"): "ophthalmic solution",
    ("oral solution", "inhalation"): "inhalation solution",
    ("oral solution", "topical"): "topical solution",
    ("oral solution", "otic"): "otic solution",
    ("tablet", "sublingual"): "sublingual tablet",
    ("ointment", "ophthalmic"): "ophthalmic ointment",
    ("cream", "vaginal"): "vaginal cream",
}
_ROUTE_WORDS: Final = {
    "oral": "oral",
    "po": "oral",
    "sublingual": "sublingual",
    "topical": "topical",
    "ophthalmic": "ophthalmic",
    "eye": "ophthalmic",
    "otic": "otic",
    "nasal": "nasal",
    "intranasal": "nasal",
    "inhalation": "inhalation",
    "inhaled": "inhalation",
    "transdermal": "transdermal",
    "subcutaneous": "subcutaneous",
    "intramuscular": "intramuscular",
    "intravenous": "intravenous",
    "vaginal": "vaginal",
    "rectal": "rectal",
}
_HOURS = re.compile(r"(?<![/\d.])\b(\d{1,3})\s*(?:hr|hour|h)\b")


class DescribedForm(NamedTuple):
    kind: str | None
    release: str | None
    hours: int | None
    route: str | None


def description_form(words: list[str], text: str) -> DescribedForm:
    """Dose form, release, dosing interval and route named in a free-text description.

    ``words`` are the lowercase alphabetic tokens of the description, ``text`` its lowercase
    form (for the "24 HR" interval).
    """
    joined = " " + " ".join(words) + " "
    kind = next((k for phrase, k in _KIND_PHRASES if f" {phrase} " in joined), None)
    release = next((r for phrase, r in _RELEASE_PHRASES if f" {phrase} " in joined), None)
    hours_match = _HOURS.search(text)
    hours = int(hours_match.group(1)) if hours_match else None
    if hours is None:
        hours = next((h for word, h in _RELEASE_HOURS.items() if word in words), None)
    if hours is not None and release is None:
        release = "ER"
    route = next((_ROUTE_WORDS[word] for word in words if word in _ROUTE_WORDS), None)
    if kind is not None and route is not None:
        kind = _ROUTE_REFINEMENTS.get((kind, route), kind)
    return DescribedForm(kind, release, hours, route)


# FDA DOSAGEFORMNAME (upper case) -> RxNorm dose form, optionally depending on the route.
_FDA_FORMS: Final[dict[str, str | dict[str, str]]] = {
    "TABLET": {"sublingual": "Sublingual Tablet", "": "Oral Tablet"},
    "TABLET, FILM COATED": "Oral Tablet",
    "TABLET, COATED": "Oral Tablet",
    "TABLET, SUGAR COATED": "Oral Tablet",
    "TABLET, EXTENDED RELEASE": "Extended Release Oral Tablet",
    "TABLET, FILM COATED, EXTENDED RELEASE": "Extended Release Oral Tablet",
    "TABLET, MULTILAYER, EXTENDED RELEASE": "Extended Release Oral Tablet",
    "TABLET, DELAYED RELEASE": "Delayed Release Oral Tablet",
    "TABLET, CHEWABLE": "Chewable Tablet",
    "TABLET, ORALLY DISINTEGRATING": "Disintegrating Oral Tablet",
    "CAPSULE": "Oral Capsule",
    "CAPSULE, GELATIN COATED": "Oral Capsule",
    "CAPSULE, LIQUID FILLED": "Oral Capsule",
    "CAPSULE, EXTENDED RELEASE": "Extended Release Oral Capsule",
    "CAPSULE, DELAYED RELEASE": "Delayed Release Oral Capsule",
    "CAPSULE, DELAYED RELEASE PELLETS": "Delayed Release Oral Capsule",
    "SOLUTION": {
        "ophthalmic": "Ophthalmic Solution",
        "inhalation": "Inhalation Solution",
        "topical": "Topical Solution",
        "otic": "Otic Solution",
        "": "Oral Solution",
    },
    "SOLUTION/ DROPS": {
        "ophthalmic": "Ophthalmic Solution",
        "otic": "Otic Solution",
        "": "Oral Solution",
    },
    "LIQUID": "Oral Solution",
    "SYRUP": "Oral Solution",
    "ELIXIR": "Oral Solution",
    "SUSPENSION": {"ophthalmic": "Ophthalmic Suspension", "": "Oral Suspension"},
    "POWDER, FOR SUSPENSION": "Oral Suspension",
    "FOR SUSPENSION": "Oral Suspension",
    "INJECTION": "Injectable Solution",
    "INJECTION, SOLUTION": "Injectable Solution",
    "INJECTION, SUSPENSION": "Injectable Suspension",
    "INJECTION, POWDER, FOR SOLUTION": "Injection",
    "INJECTION, POWDER, LYOPHILIZED, FOR SOLUTION": "Injection",
    "PATCH": "Transdermal System",
    "PATCH, EXTENDED RELEASE": "Transdermal System",
    "AEROSOL, METERED": "Metered Dose Inhaler",
    "POWDER, METERED": "Dry Powder Inhaler",
    "SPRAY, METERED": "Metered Dose Nasal Spray",
    "SPRAY": {"nasal": "Nasal Spray", "": "Topical Spray"},
    "CREAM": {"vaginal": "Vaginal Cream", "": "Topical Cream"},
    "OINTMENT": {"ophthalmic": "Ophthalmic Ointment", "": "Topical Ointment"},
    "GEL": "Topical Gel",
    "LOTION": "Topical Lotion",
    "FILM": {"buccal": "Buccal Film", "": "Sublingual Film"},
    "SUPPOSITORY": "Rectal Suppository",
}
_FDA_ROUTES: Final = {
    "ORAL": "oral",
    "SUBLINGUAL": "sublingual",
    "BUCCAL": "buccal",
    "TRANSDERMAL": "transdermal",
    "RESPIRATORY (INHALATION)": "inhalation",
    "NASAL": "nasal",
    "OPHTHALMIC": "ophthalmic",
    "TOPICAL": "topical",
    "CUTANEOUS": "topical",
    "RECTAL": "rectal",
    "VAGINAL": "vaginal",
    "AURICULAR (OTIC)": "otic",
    "SUBCUTANEOUS": "subcutaneous",
    "INTRAMUSCULAR": "intramuscular",
    "INTRAVENOUS": "intravenous",
    "DENTAL": "dental",
}


def fda_route(routename: str) -> str:
    """The reference's route for an FDA ``ROUTENAME``; the first of several ("A; B")."""
    first = routename.split(";")[0].strip().upper()
    return _FDA_ROUTES.get(first, first.lower())


def fda_dose_form(dosageformname: str, route: str) -> str:
    """The RxNorm dose form for an FDA ``DOSAGEFORMNAME``; unknown forms keep the FDA wording
    in title case so the product is still named sensibly."""
    name = dosageformname.strip().upper()
    mapped = _FDA_FORMS.get(name)
    if isinstance(mapped, dict):
        return mapped.get(route, mapped[""])
    return mapped if mapped is not None else name.title()


# Words of an RxNorm dose form name (DF) -> route, first match wins: "Sublingual Film" before
# "Film", "Oral" last among the mucosal routes. Injectables get the neutral "injection": the
# dose form does not say subcutaneous or intravenous, and no route-specific maximum applies then.
_RXNORM_ROUTE_WORDS: Final = (
    ("sublingual", "sublingual"),
    ("buccal", "buccal"),
    ("transdermal", "transdermal"),
    ("nasal", "nasal"),
    ("ophthalmic", "ophthalmic"),
    ("otic", "otic"),
    ("rectal", "rectal"),
    ("enema", "rectal"),
    ("vaginal", "vaginal"),
    ("inhaler", "inhalation"),
    ("inhalation", "inhalation"),
    ("inhalant", "inhalation"),
    ("oral", "oral"),
    ("chewable", "oral"),
    ("injectable", "injection"),
    ("injection", "injection"),
    ("syringe", "injection"),
    ("injector", "injection"),
    ("cartridge", "injection"),
    ("topical", "topical"),
    ("cream", "topical"),
    ("ointment", "topical"),
    ("shampoo", "topical"),
    ("dental", "dental"),
)


def rxnorm_route(dose_form: str) -> str:
    """The reference's route for an RxNorm dose form name; "" when the name does not say."""
    form_words = set(re.findall(r"[a-z]+", dose_form.lower()))
    return next((route for word, route in _RXNORM_ROUTE_WORDS if word in form_words), "")
