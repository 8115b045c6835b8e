"""The built-in event-stream scenario behind ``crackle demo``.

A stream processor handles batches of events. The first 60% of the batches are healthy;
then the system degrades: latency, queue depth and error rate climb and more records are
dropped. Every batch checks records in against records out + dropped, so the demo shows
phase transitions, correlations, conserved quantities and a conservation law, while the
batch id (a counter) must not be reported as conserved.
"""

from __future__ import annotations

import numpy as np

from crackle_runtime.task import CrackleTask, TaskOutput

__all__ = ["EventBatch", "event_stream"]


class EventBatch(CrackleTask):
    """One batch of the event stream: validates its events and reports what happened."""

    def __init__(self, index: int, degradation: float, seed: int) -> None:
        self.index = index
        self.degradation = degradation  # 0 = healthy, 1 = fully degraded
        self.seed = seed

    def label(self) -> str:
        return f"batch-{self.index:04d}"

    def fire(self) -> TaskOutput:
        rng = np.random.default_rng([self.seed, self.index])
        records_in = int(rng.normal(1000.0, 40.0))
        # Each event fails validation with a probability that grows as the system degrades.
        drop_probability = 0.004 + 0.06 * self.degradation
        valid = rng.random(records_in) >= drop_probability
        records_out = int(valid.sum())
        dropped = records_in - records_out
        queue_depth = 12.0 + 180.0 * self.degradation + rng.normal(0.0, 4.0)
        latency_ms = 48.0 + 0.9 * queue_depth + rng.normal(0.0, 3.0)
        error_rate = dropped / records_in
        cpu_pct = 41.0 + 40.0 * self.degradation + rng.normal(0.0, 2.5)
        return TaskOutput(
            records_out,
            {
                "batch_id": float(self.index),
                "records_in": float(records_in),
                "records_out": float(records_out),
                "dropped": float(dropped),
                "latency_ms": float(latency_ms),
                "queue_depth": float(queue_depth),
                "error_rate": float(error_rate),
                "cpu_pct": float(cpu_pct),
            },
        )


def event_stream(tasks: int = 1000, seed: int = 7, healthy_share: float = 0.6) -> list[EventBatch]:
    """The scenario's batches: healthy first, then a steadily degrading system."""
    healthy = int(tasks * healthy_share)
    batches = []
    for index in range(tasks):
        degradation = 0.0 if index < healthy else (index - healthy + 1) / max(tasks - healthy, 1)
        batches.append(EventBatch(index, degradation, seed))
    return batches
