"""The exception hierarchy of crackle_runtime.

Defined once, here; the native extension imports these classes, so both backends raise
exactly the same types.
"""

from __future__ import annotations

__all__ = [
    "CoolingTimeoutError",
    "CrackleError",
    "DetectionFailedError",
    "InvalidMetricError",
    "InvalidProfileError",
    "KilnCooledError",
    "TaskPanickedError",
]


class CrackleError(Exception):
    """Base class of every error raised by crackle_runtime itself."""


class TaskPanickedError(CrackleError):
    """A task raised while firing; the original exception is ``__cause__``."""

    def __init__(self, label: str, message: str | None = None) -> None:
        self.label = label
        super().__init__(message or f"task {label!r} raised while firing")


class KilnCooledError(CrackleError):
    """A recording method was called on a kiln that has been cooled (call ``reset()``)."""


class InvalidProfileError(CrackleError, ValueError):
    """A thermal profile value or name is invalid."""


class InvalidMetricError(CrackleError, ValueError):
    """A metric name or value is invalid; the task it belongs to was not recorded."""

    def __init__(self, message: str, task: str | None = None, metric: str | None = None) -> None:
        self.task = task
        self.metric = metric
        super().__init__(message)


class DetectionFailedError(CrackleError):
    """A detector could not run on the recorded data."""


class CoolingTimeoutError(CrackleError):
    """Cooling exceeded the profile's ``max_cooling_duration``."""
