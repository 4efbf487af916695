"""The exporter's errors, one tree; the job service maps each to a job failure with its reason.

::

    ExportError            anything the exporter refuses or cannot do
    ├── InputError         the series cannot become a volume (not CT, too few slices, geometry)
    └── BudgetExceeded     the job would not fit its memory budget (raised before work starts)
"""

from __future__ import annotations


class ExportError(Exception):
    """Base of the exporter's errors; ``reason`` is a sentence for a person."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InputError(ExportError):
    """The DICOM series cannot be turned into a CT volume."""


class BudgetExceeded(ExportError):
    """The estimated peak memory of a job exceeds its budget."""
