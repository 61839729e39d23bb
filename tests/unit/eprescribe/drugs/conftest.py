"""Shared fixtures: the bundled reference (cached by the package itself) and a name lookup."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from eprescribe.drugs import Drug, DrugReference


@pytest.fixture(scope="session")
def reference() -> DrugReference:
    return DrugReference.bundled()


@pytest.fixture(scope="session")
def drug(reference: DrugReference) -> Callable[[str], Drug]:
    """Look a bundled drug up by its exact name, failing loudly on a typo."""

    def lookup(name: str) -> Drug:
        found = reference.by_name(name)
        assert found is not None, name
        return found

    return lookup
