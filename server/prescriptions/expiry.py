"""How long a prescription stays fillable: the operator's expiry rules
(``TELEPHARM_EXPIRY_RULES``), read by the checks at receipt and by the fills."""

from __future__ import annotations

import json
from pathlib import Path

from eprescribe.checks import ExpiryRules

from ..settings import SettingsError

__all__ = ["load_expiry_rules"]


def load_expiry_rules(path: str) -> ExpiryRules:
    """The operator's expiry rules (``TELEPHARM_EXPIRY_RULES``), or the federal defaults."""
    if not path:
        return ExpiryRules()
    try:
        return ExpiryRules.from_mapping(json.loads(Path(path).read_text()))
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        raise SettingsError(f"TELEPHARM_EXPIRY_RULES {path}: {exc}") from exc
