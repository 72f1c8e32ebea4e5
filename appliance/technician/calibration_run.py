"""Guided calibration and drift check against a reference gauge, point by point."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.technician import audit_entry
from appliance.technician.calibration import (
    ACCURACY_MMHG,
    CalibrationPoint,
    CalibrationRecord,
    calibration_state,
    check_reading,
    new_record,
    write_record,
)
from appliance.technician.errors import TechnicianError
from appliance.technician.link import ControllerLink
from appliance.technician.preflight import require_no_session
from appliance.technician.pressure_hold import HeldPressure, PressureHold
from appliance.technician.progress import Progress

# Given the index of the point and what was held, return the reference gauge's reading (mmHg).
GaugeReader = Callable[[int, HeldPressure], float]


def scripted_gauge(readings: Sequence[float]) -> GaugeReader:
    def read(index: int, held: HeldPressure) -> float:
        return check_reading(readings[index])

    return read


def simulated_gauge(progress: Progress) -> GaugeReader:
    """The plant's true pressure stands in for the gauge, printed so the run can be replayed."""

    def read(index: int, held: HeldPressure) -> float:
        if held.true_mmHg is None:
            raise TechnicianError("no simulated gauge on a device", "pass --gauge-readings")
        value = round(held.true_mmHg, 1)
        progress.note(f"simulated gauge reads {value:.1f} mmHg")
        return value

    return read


def typed_gauge(link: ControllerLink, ask: Callable[[str], str] = input) -> GaugeReader:
    """Ask the technician; heartbeats keep the cuff inflated while they read and type."""

    def read(index: int, held: HeldPressure) -> float:
        prompt = (
            f"    Cuff held at about {held.target_mmHg:g} mmHg. Reference gauge reading in mmHg "
            "(q to stop): "
        )
        with link.keepalive():
            while True:
                text = ask(prompt).strip()
                if text.lower() in ("q", "quit"):
                    raise TechnicianError("stopped by the technician", "nothing was changed")
                try:
                    return check_reading(float(text.replace(",", ".")))
                except ValueError:
                    print("    not a number: type the value shown by the gauge, e.g. 101.5")
                except TechnicianError as exc:
                    print(f"    {exc}")

    return read


@dataclass(frozen=True)
class MeasuredPoint:
    held: HeldPressure
    gauge_mmHg: float


def measure(
    link: ControllerLink,
    targets: Sequence[float],
    gauge: GaugeReader,
    progress: Progress,
) -> list[MeasuredPoint]:
    """Hold each target, average the transducer, read the gauge; always deflate at the end."""
    hold = PressureHold(link, progress)
    hold.check_targets(list(targets))
    points = []
    try:
        for i, target in enumerate(targets):
            progress.step(f"point {i + 1}/{len(targets)}: {target:g} mmHg")
            held = hold.hold(target)
            if held.spread_mmHg > 2 * ACCURACY_MMHG:
                progress.warn(
                    f"pressure moved {held.spread_mmHg:.1f} mmHg while measuring: keep the cuff "
                    "and hose still"
                )
            points.append(MeasuredPoint(held, gauge(i, held)))
    finally:
        progress.step("emptying the cuff")
        hold.release()
    return points


def calibrate(
    link: ControllerLink | None,
    *,
    targets: Sequence[float],
    gauge: GaugeReader | None,
    given: Sequence[CalibrationPoint],
    gauge_id: str,
    technician: str,
    data_dir: Path | None,
    progress: Progress,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Measure (or take `given` points), fit, store, audit and apply; return a report."""
    if data_dir is not None:
        require_no_session(data_dir, now(), "calibration")
    if given:
        points = list(given)
    else:
        assert link is not None and gauge is not None
        measured = measure(link, targets, gauge, progress)
        points = [CalibrationPoint(m.held.nominal_mmHg, m.gauge_mmHg) for m in measured]
    record = new_record(points, gauge_id=gauge_id, technician=technician, now=now())
    report: dict[str, Any] = {"calibration": record.to_dict(), "stored": None, "applied": False}
    progress.step(
        f"fit: zero {record.calibration.zero_mmHg:+.2f} mmHg, span {record.calibration.span:.4f}"
    )
    if data_dir is not None:
        path = write_record(data_dir, record)
        report["stored"] = str(path)
        progress.note(f"stored in {path}")
        problem = audit_entry.audit(
            data_dir,
            actor=technician,
            action=audit_entry.CALIBRATION_SET,
            subject=f"gauge:{record.gauge_id}",
            detail=record.to_dict(),
        )
        if problem:
            progress.warn(problem)
    else:
        progress.note("not stored (simulation without --data-dir)")
    if link is not None:
        report["applied"] = apply(link, record, progress)
    return report


def apply(link: ControllerLink, record: CalibrationRecord, progress: Progress) -> bool:
    """Hand zero and span to the running controller; it uses them from its next sample."""
    reply = link.request(
        {
            "cmd": "set_calibration",
            "zero_mmHg": record.calibration.zero_mmHg,
            "span": record.calibration.span,
        }
    )
    if not reply.get("ok"):
        raise TechnicianError(
            f"stored, but the controller did not take it: {reply.get('error')}",
            "when the controller is IDLE run `bfr calibrate --apply`, or restart it "
            "(`systemctl restart bfr-controller`)",
        )
    link.wait(0.5)
    status = link.status()
    progress.note(f"applied; the vented cuff now reads {status.get('mmHg')} mmHg")
    return True


def check(
    link: ControllerLink,
    *,
    targets: Sequence[float],
    gauge: GaugeReader,
    technician: str,
    gauge_id: str,
    data_dir: Path | None,
    progress: Progress,
    now: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """Drift of the calibrated reading against the gauge, and the record's validity."""
    if data_dir is not None:
        state = calibration_state(data_dir, now()).to_dict()
        require_no_session(data_dir, now(), "calibration check")
    else:
        state = {"state": "unknown", "message": "simulation: no stored calibration"}
    progress.step(f"calibration record: {state['message']}")
    measured = measure(link, targets, gauge, progress)
    rows = []
    for m in measured:
        drift = m.held.calibrated_mmHg - m.gauge_mmHg
        rows.append(
            {
                "target_mmHg": m.held.target_mmHg,
                "device_mmHg": round(m.held.calibrated_mmHg, 2),
                "gauge_mmHg": m.gauge_mmHg,
                "drift_mmHg": round(drift, 2),
                "limit_mmHg": ACCURACY_MMHG,
                "passed": abs(drift) <= ACCURACY_MMHG,
            }
        )
    within = all(r["passed"] for r in rows)
    record_ok = state["state"] in ("valid", "unknown")
    report = {
        "passed": within and record_ok,
        "record": state,
        "points": rows,
        "gauge_id": gauge_id,
    }
    if data_dir is not None:
        problem = audit_entry.audit(
            data_dir,
            actor=technician,
            action=audit_entry.CALIBRATION_CHECK,
            subject=f"gauge:{gauge_id}" if gauge_id else "",
            detail=report,
        )
        if problem:
            progress.warn(problem)
    return report
