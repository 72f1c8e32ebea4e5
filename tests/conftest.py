"""Shared fixtures: simulated time, a rig with a plant, and clean gpiozero state."""

from __future__ import annotations

import pytest

from hardware.clock import SimClock


class HeldPressure:
    """A plant pinned at a settable pressure: isolates sensor tests from cuff physics."""

    def __init__(self, mmHg: float = 0.0) -> None:
        self.mmHg = mmHg
        self.last_duty = 0.0
        self.last_valve_open = True

    def step(self, dt_s: float, pump_duty: float, valve_open: bool) -> None:
        self.last_duty = pump_duty
        self.last_valve_open = valve_open

    @property
    def pressure_mmHg(self) -> float:
        return self.mmHg


@pytest.fixture
def clock() -> SimClock:
    return SimClock()


@pytest.fixture
def held() -> HeldPressure:
    return HeldPressure()


@pytest.fixture
def wall():
    from tests.clinic import Wall

    return Wall()


@pytest.fixture
def store(tmp_path, wall):
    from appliance.store import Store

    with Store.open(tmp_path / "data", wall=wall) as opened:
        yield opened
