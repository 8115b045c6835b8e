"""Fault injection: real SIGINTs at random moments of a serial ``fire_all`` (SPEC §8).

The README promises that Ctrl-C during ``fire_all`` keeps every task that had fired. Each
trial fires many cheap tasks and sends the process a real SIGINT from another thread after a
random delay; while the trial is armed, the handler raises ``KeyboardInterrupt`` exactly as
Python's default handler does (outside a trial a stray, late signal is ignored, so it cannot
hit pytest). Afterwards the kiln must hold a prefix of the tasks, in order and with their
values, that includes every task whose ``fire()`` had returned: at most the one task whose
``fire()`` was itself interrupted (it returned nothing) may be missing.

A few dozen trials per backend run in ``make test``; ``CRACKLE_INTERRUPT_TRIALS`` sets more.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest

from crackle_runtime import CrackleTask, Kiln, TaskOutput

TRIALS = int(os.environ.get("CRACKLE_INTERRUPT_TRIALS", "24"))
TASKS = 40_000

pytestmark = pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signals are delivered to the main thread",
)


class Counted(CrackleTask):
    """Records in ``returned`` that its fire() is about to return its output."""

    def __init__(self, index: int, returned: list[int], integer: bool) -> None:
        self.index, self.returned, self.integer = index, returned, integer

    def label(self) -> str:
        return f"t{self.index}"

    def fire(self) -> TaskOutput:
        # ints take the recorders' slow path (checked in Python on both backends)
        value: Any = self.index if self.integer else float(self.index)
        output = TaskOutput(None, {"i": value, "j": 2.0 * self.index})
        self.returned.append(self.index)
        return output


@pytest.fixture
def armed() -> Iterator[threading.Event]:
    """A SIGINT handler that raises KeyboardInterrupt while the event is set."""
    event = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if event.is_set():
            event.clear()
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        event.clear()
        signal.signal(signal.SIGINT, previous)


def _one_trial(rng: random.Random, armed: threading.Event, integer: bool) -> tuple[int, int]:
    returned: list[int] = []
    kiln = Kiln()
    tasks = (Counted(i, returned, integer) for i in range(TASKS))
    # the whole run takes tens of milliseconds: aim anywhere in it, the ends included
    delay = rng.uniform(0.0, 0.08)
    sender = threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT))
    try:
        # Started inside the try: a short delay can deliver the signal while start() waits
        # for the timer thread (under load), and it must not escape the trial either.
        armed.set()
        sender.start()
        kiln.fire_all(tasks)
        # a signal sent after fire_all returned reaches the handler here, still armed: it
        # must not escape the trial (a KeyboardInterrupt out of a test ends the session)
        sender.join()
        time.sleep(0.001)
    except KeyboardInterrupt:
        pass
    finally:
        armed.clear()
        sender.join()
    labels, _, matrix = kiln.metric_matrix()
    recorded = len(labels)
    assert labels == [f"t{i}" for i in range(recorded)]
    if recorded:
        assert matrix[:, kiln.metric_names.index("i")].tolist() == list(map(float, range(recorded)))
        assert matrix[:, kiln.metric_names.index("j")].tolist() == [
            2.0 * i for i in range(recorded)
        ]
    # every task whose fire() returned is recorded, except possibly the one interrupted
    # between its last statement and its return
    assert recorded in (len(returned), len(returned) - 1), (recorded, len(returned))
    return recorded, len(returned)


# a signal handled inside a garbage-collector callback is reported as unraisable and
# ignored by Python itself (the run then goes on); that is not the kiln's to handle
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("integer", [False, True], ids=["floats", "ints"])
def test_sigint_during_fire_all_loses_no_fired_task(
    armed: threading.Event, integer: bool, backend: str
) -> None:
    rng = random.Random(f"{backend}-{integer}")
    outcomes = [_one_trial(rng, armed, integer) for _ in range(TRIALS)]
    # the trials really interrupted something: some stopped part-way
    assert any(0 < recorded < TASKS for recorded, _ in outcomes), outcomes
