"""Exceptions of the drug reference package."""

from __future__ import annotations

__all__ = ["DrugDataError", "DrugReferenceError", "FdaFormatError", "RxNormFormatError"]


class DrugReferenceError(Exception):
    """Base class of the package's errors."""


class DrugDataError(DrugReferenceError):
    """Reference data (bundled or supplied) is inconsistent: unknown class, bad name, ..."""


class FdaFormatError(DrugReferenceError):
    """An FDA NDC Directory file cannot be read at all (for example, a missing column).

    Single bad rows are counted and skipped instead, because the files are large and a few
    malformed listings must not stop an import.
    """


class RxNormFormatError(DrugReferenceError):
    """An RxNorm RRF file is not one (a line with the wrong number of fields, not UTF-8).

    Unlike the FDA files, the whole import stops: RRF is written by NLM's tools, so a bad line
    means a truncated or foreign file rather than one odd listing.
    """
