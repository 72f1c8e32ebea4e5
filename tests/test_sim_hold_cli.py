"""`bfr sim hold`: the trace contract, and faults ending deflated in the trace."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.commands.sim_hold import TRACE_COLUMNS


def read(path: Path) -> list[dict[str, str]]:
    with path.open() as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == TRACE_COLUMNS
        return list(reader)


def test_trace_has_one_row_per_control_step_and_holds(tmp_path: Path) -> None:
    trace = tmp_path / "t.csv"
    assert (
        main(
            [
                "sim",
                "hold",
                "--target",
                "120",
                "--duration",
                "15",
                "--seed",
                "3",
                "--trace",
                str(trace),
            ]
        )
        == 0
    )
    rows = read(trace)
    times = [float(r["t_s"]) for r in rows]
    assert all(b > a for a, b in zip(times, times[1:], strict=False))
    assert len(rows) == pytest.approx(250 * times[-1], rel=0.02)  # 250 SPS, every sample
    assert rows[-1]["state"] == "HOLDING"
    assert abs(float(rows[-1]["plant_mmHg"]) - 120) < 6
    assert {r["valve_open"] for r in rows} <= {"0", "1"}
    assert all(r["alarm"] == "" for r in rows[-100:])


def test_plant_fault_shows_and_ends_deflated(tmp_path: Path) -> None:
    trace = tmp_path / "f.csv"
    code = main(
        [
            "sim",
            "hold",
            "--target",
            "120",
            "--duration",
            "30",
            "--plant",
            "tests.plants:cuff_off",
            "--trace",
            str(trace),
        ]
    )
    assert code == 0
    rows = read(trace)
    last = rows[-1]
    assert last["state"] == "FAULT" and last["alarm"] == "PUMP_NO_RISE"
    assert float(last["pump_duty"]) == 0.0 and last["valve_open"] == "1"


@pytest.mark.parametrize(
    ("plant", "code", "needle"),
    [
        ("nope:x", 2, "cannot import plant module"),
        ("os:getcwd", 2, "building the plant failed: TypeError"),
        ("tests.plants:broken_plant", 2, "no parameters for seed 0"),
    ],
)
def test_bad_plant_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plant: str, code: int, needle: str
) -> None:
    trace = tmp_path / "x.csv"
    args = ["sim", "hold", "--target", "120", "--duration", "5", "--plant", plant]
    assert main([*args, "--trace", str(trace)]) == code
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize("plant", ["nan_after_a_second", "raises_after_a_second"])
def test_a_plant_that_fails_mid_hold_ends_in_a_fault_the_trace_shows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plant: str
) -> None:
    """The plant's pressure stops being a number, or its code raises: the transducer reads as
    one pulled off (a rail), and the trace ends with the controller's fault, pump 0, valve 1."""
    trace = tmp_path / "x.csv"
    args = ["sim", "hold", "--target", "120", "--duration", "5", "--plant", f"tests.plants:{plant}"]
    assert main([*args, "--trace", str(trace)]) == 1
    err = capsys.readouterr().err
    assert "the plant failed" in err and "Traceback" not in err
    last = read(trace)[-1]
    assert last["state"] == "FAULT" and last["alarm"] == "SENSOR_RANGE"
    assert float(last["pump_duty"]) == 0.0 and last["valve_open"] == "1"


def test_unsafe_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "x.csv"
    for target in ("320", "280"):  # above the absolute cap; above the controller's 260 limit
        code = main(["sim", "hold", "--target", target, "--duration", "5", "--trace", str(trace)])
        assert code == 2
        assert "target_mmHg" in capsys.readouterr().err
        assert not trace.exists()  # no half a trace of a hold that never began


def test_simulation_imports_the_real_drivers(tmp_path: Path) -> None:
    """The simulated appliance runs the real adafruit and gpiozero code, not stand-ins."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "appliance", "sim", "hold", "--target", "80"]
        + ["--duration", "1", "--trace", str(tmp_path / "i.csv")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in out.stderr.splitlines()}
    assert "adafruit_ads1x15.ads1115" in imported
    assert "adafruit_bus_device.i2c_device" in imported
    assert "gpiozero.pins.mock" in imported
    assert "gpiozero.output_devices" in imported
