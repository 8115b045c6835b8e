"""GlazeLayer: wrap a task to add derived metrics and override its label (SPEC §3)."""

from __future__ import annotations

from collections.abc import Callable

from crackle_runtime.task import (
    CrackleTask,
    MetricsLike,
    TaskOutput,
    fire_function,
    overrides_cool,
    task_label,
)

__all__ = ["GlazeLayer"]


class GlazeLayer(CrackleTask):
    """A task wrapping another: derived metrics are added after firing (and again during
    cooling, as the seed does); ``with_label`` overrides the label."""

    def __init__(self, task: object) -> None:
        self.task = task
        self._derived: list[tuple[str, Callable[[TaskOutput], float]]] = []
        self._label: str | None = None

    def with_derived_metric(self, name: str, fn: Callable[[TaskOutput], float]) -> GlazeLayer:
        self._derived.append((name, fn))
        return self

    def with_label(self, label: str) -> GlazeLayer:
        self._label = label
        return self

    def fire(self) -> TaskOutput:
        output = fire_function(self.task)()
        for name, derive in self._derived:
            output.metrics[name] = derive(output)
        return output  # type: ignore[no-any-return]

    def label(self) -> str:
        return self._label if self._label is not None else task_label(self.task)

    def cool(
        self, output: TaskOutput, all_metrics: list[tuple[str, dict[str, float]]]
    ) -> MetricsLike:
        cooled: dict[str, object] = {}
        if overrides_cool(self.task):
            cooled.update(dict(self.task.cool(output, all_metrics)))  # type: ignore[attr-defined]
        for name, derive in self._derived:
            cooled[name] = derive(output)
        return cooled
