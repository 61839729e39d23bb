"""Package boundaries and loud failures on inconsistent data."""

from __future__ import annotations

import subprocess
import sys

import pytest

from eprescribe.drugs import DrugClass, DrugDataError, Vocabulary
from eprescribe.drugs.catalog import build_drug
from eprescribe.drugs.names import parse_drug_name
from eprescribe.drugs.vocabulary import IngredientInfo


def test_the_domain_package_does_not_import_the_web_or_the_database() -> None:
    code = (
        "import sys, eprescribe.drugs\n"
        "eprescribe.drugs.DrugReference.bundled()\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'sqlalchemy', 'server')]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _vocabulary(**ingredient_classes: str) -> Vocabulary:
    return Vocabulary(
        [DrugClass("ssri", "SSRI", duplication=True)],
        [
            IngredientInfo(name, frozenset(classes.split()), {})
            for name, classes in ingredient_classes.items()
        ],
        [],
        [],
    )


def test_unknown_class_fails_on_load() -> None:
    with pytest.raises(DrugDataError, match="unknown ssnri"):
        _vocabulary(sertraline="ssnri")


def test_unknown_ingredient_in_a_drug_row_fails() -> None:
    vocabulary = _vocabulary(sertraline="ssri")
    row = {
        "name": "sertralin 50 MG Oral Tablet",
        "route": "oral",
        "dea_schedule": "",
        "max_daily": "",
        "rxcui": "",
        "ndcs": "",
    }
    with pytest.raises(DrugDataError, match="unknown ingredient 'sertralin'"):
        build_drug(row, vocabulary)


def test_bad_schedule_and_override_fail() -> None:
    vocabulary = _vocabulary(sertraline="ssri")
    row = {
        "name": "sertraline 50 MG Oral Tablet",
        "route": "oral",
        "dea_schedule": "C2",
        "max_daily": "",
        "rxcui": "",
        "ndcs": "",
    }
    with pytest.raises(DrugDataError, match="DEA schedule"):
        build_drug(row, vocabulary)
    row |= {"dea_schedule": "", "max_daily": "fluoxetine=80 MG"}
    with pytest.raises(DrugDataError, match="lacks"):
        build_drug(row, vocabulary)


@pytest.mark.parametrize(
    "name", ["sertraline 50 MG", "sertraline Oral Tablet", "50 MG Oral Tablet"]
)
def test_names_that_are_not_rxnorm_shaped_fail(name: str) -> None:
    with pytest.raises(DrugDataError):
        parse_drug_name(name)
