"""Tasks: what the kiln fires (SPEC §3)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeAlias, runtime_checkable

import numpy as np

from crackle_runtime.errors import InvalidMetricError

__all__ = [
    "ANONYMOUS_LABEL",
    "CrackleTask",
    "MetricsLike",
    "TaskLike",
    "TaskOutput",
    "metric_dict",
    "overrides_cool",
    "task_label",
]

ANONYMOUS_LABEL = "anonymous task"

MetricsLike: TypeAlias = Mapping[str, Any] | Iterable[tuple[str, Any]]


# integral types stored as floats (exact types: subclasses such as enums go through the
# kiln's validation, which reads them with float())
_INTEGRAL = frozenset(
    {int, bool, np.bool_, *(np.dtype(code).type for code in np.typecodes["AllInteger"])}
)


def metric_dict(metrics: MetricsLike) -> dict[str, Any]:
    """``metrics`` (a mapping or ``(name, value)`` pairs) as a dict, ints and bools as
    floats; InvalidMetricError when pairs repeat a name."""
    if isinstance(metrics, Mapping):
        result = dict(metrics)
    else:
        pairs = list(metrics)
        result = dict(pairs)
        if len(result) != len(pairs):
            counts = collections.Counter(name for name, _ in pairs)
            repeated = next(name for name, count in counts.items() if count > 1)
            raise InvalidMetricError(
                f"metric {repeated!r} is given more than once", metric=str(repeated)
            )
    if not _INTEGRAL.isdisjoint(map(type, result.values())):
        for name, number in result.items():
            if type(number) in _INTEGRAL:
                try:
                    result[name] = float(number)
                except OverflowError:
                    pass  # beyond the float range: the kiln's validation names it
    return result


class TaskOutput:
    """What a task's ``fire()`` returns: a value plus named numeric metrics.

    ``metrics`` is a mapping or an iterable of ``(name, value)`` pairs, stored as an
    insertion-ordered dict; a name given twice in pairs is an InvalidMetricError. Python and
    NumPy ints and bools are stored as floats (``True`` as ``1.0``); other values are not
    validated here: the kiln validates them when it records the output.
    """

    __slots__ = ("metrics", "value")

    def __init__(self, value: Any = None, metrics: MetricsLike | None = None) -> None:
        self.value = value
        self.metrics: dict[str, Any] = {} if metrics is None else metric_dict(metrics)

    @classmethod
    def simple(cls, value: Any) -> TaskOutput:
        """An output with no metrics."""
        return cls(value)

    def with_metric(self, name: str, value: Any) -> TaskOutput:
        """Add (or replace) one metric in place and return this same output."""
        self.metrics[name] = float(value) if type(value) in _INTEGRAL else value
        return self

    def __repr__(self) -> str:
        return f"TaskOutput(value={self.value!r}, metrics={self.metrics!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskOutput):
            return NotImplemented
        return bool(self.value == other.value) and self.metrics == other.metrics

    __hash__ = None  # type: ignore[assignment]


class CrackleTask:
    """Base class of a task: override ``fire``; ``label`` and ``cool`` are optional."""

    def fire(self) -> TaskOutput:
        """The hot phase: run the work and return its output and metrics."""
        raise NotImplementedError(f"{type(self).__name__} must implement fire()")

    def label(self) -> str:
        return ANONYMOUS_LABEL

    def cool(
        self, output: TaskOutput, all_metrics: list[tuple[str, dict[str, float]]]
    ) -> MetricsLike:
        """Post-completion hook called by ``Kiln.cool()``; the metrics it returns override the
        firing metrics of the same name for detection."""
        return {}


@runtime_checkable
class TaskLike(Protocol):
    def fire(self) -> TaskOutput: ...


_COOL_OVERRIDDEN: dict[type, bool] = {}


def overrides_cool(task: object) -> bool:
    """Whether the kiln must call this task's ``cool`` hook (and so keep the task)."""
    kind = type(task)
    known = _COOL_OVERRIDDEN.get(kind)
    if known is None:
        hook = getattr(kind, "cool", None)
        known = callable(hook) and hook is not CrackleTask.cool
        _COOL_OVERRIDDEN[kind] = known
    return known


_FIXED_LABEL: dict[type, str | None] = {}


def fixed_label(kind: type) -> bool:
    """Whether every task of this class has the default label (a CrackleTask subclass that
    does not override label())."""
    return issubclass(kind, CrackleTask) and getattr(kind, "label", None) is CrackleTask.label


def task_label(task: object) -> str:
    """The label of a task: its ``label()``, a callable's ``__name__``, else the default."""
    kind = type(task)
    fixed = _FIXED_LABEL.get(kind, "")
    if fixed is None:
        pass  # the class overrides label(): call it below
    elif fixed:
        return fixed
    elif isinstance(task, CrackleTask):
        # a CrackleTask that does not override label() has the default label
        fixed = ANONYMOUS_LABEL if fixed_label(kind) else None
        _FIXED_LABEL[kind] = fixed
        if fixed:
            return fixed
    label_method = getattr(task, "label", None)
    if callable(label_method):
        label = label_method()
    elif not hasattr(task, "fire") and callable(task):
        label = getattr(task, "__name__", ANONYMOUS_LABEL)
    else:
        label = ANONYMOUS_LABEL
    return label if isinstance(label, str) else str(label)


def fire_function(task: object) -> Callable[[], Any]:
    """The zero-argument callable that fires ``task`` (a task object or a plain callable)."""
    fire = getattr(task, "fire", None)
    if callable(fire):
        return fire  # type: ignore[no-any-return]
    if callable(task):
        return task
    raise TypeError(f"a task must have a fire() method or be callable, got {type(task).__name__}")
