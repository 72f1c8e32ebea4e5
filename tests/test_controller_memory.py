"""The garbage collector kept out of the control loop's way (appliance/controller/memory.py)."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest

from appliance.controller.memory import GcPauseLog, settle_heap


@pytest.fixture
def unfreeze() -> Iterator[None]:
    yield
    gc.unfreeze()


def test_what_start_up_made_is_frozen_out_of_the_scans(unfreeze: None) -> None:
    start_up = [[i] for i in range(5000)]  # containers the collector would otherwise scan
    frozen = settle_heap()
    assert frozen >= len(start_up)
    later = [[i] for i in range(100)]
    # What a collection scans from now on: what came after, not what start-up left.
    scanned = {id(o) for o in gc.get_objects()}
    assert id(start_up) not in scanned and id(start_up[-1]) not in scanned
    assert id(later) in scanned and id(later[-1]) in scanned


class FakeTimer:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_a_long_collection_is_logged_and_a_short_one_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    timer = FakeTimer()
    pauses = GcPauseLog(logging.getLogger("bfr.controller"), threshold_s=0.01, clock=timer)
    with caplog.at_level(logging.WARNING, logger="bfr.controller"):
        pauses("start", {"generation": 0})
        timer.t += 0.002
        pauses("stop", {"generation": 0, "collected": 3})
        assert caplog.records == []
        pauses("start", {"generation": 2})
        timer.t += 0.025
        pauses("stop", {"generation": 2, "collected": 40})
    assert len(caplog.records) == 1
    assert "25.0 ms (generation 2, 40 collected)" in caplog.records[0].getMessage()
    assert pauses.long_pauses == 1
    assert pauses.longest_s == pytest.approx(0.025)
    assert pauses.last_s == pytest.approx(0.025)


def test_the_pause_log_times_real_collections_once_installed() -> None:
    pauses = GcPauseLog(logging.getLogger("bfr.controller"))
    pauses.install()
    pauses.install()  # twice is once
    try:
        assert gc.callbacks.count(pauses) == 1
        gc.collect()
        assert pauses.last_s > 0.0
    finally:
        pauses.remove()
    assert pauses not in gc.callbacks
