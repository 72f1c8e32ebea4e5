"""Cuff traces in and out: CSV loading, input checks and resampling onto a uniform grid."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TIME_COLUMN = "t_s"
PRESSURE_COLUMN = "pressure_mmHg"

# Everything downstream runs at one rate so that results cannot depend on how the trace was
# sampled; 100 Hz keeps pulse harmonics up to ~10 Hz, far above what the amplitude needs.
ANALYSIS_RATE_HZ = 100.0


def load_trace_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read `t_s,pressure_mmHg` columns (others ignored); ValueError names what is wrong."""
    path = Path(path)
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise ValueError(
                f"{path}: empty file, expected a header with t_s,pressure_mmHg"
            ) from None
        missing = [c for c in (TIME_COLUMN, PRESSURE_COLUMN) if c not in header]
        if missing:
            raise ValueError(f"{path}: missing column(s) {', '.join(missing)} in header {header}")
        t_col, p_col = header.index(TIME_COLUMN), header.index(PRESSURE_COLUMN)
        times: list[float] = []
        pressures: list[float] = []
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                t, p = float(row[t_col]), float(row[p_col])
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{line_no}: not a number pair in {row!r}") from None
            if not (math.isfinite(t) and math.isfinite(p)):
                raise ValueError(f"{path}:{line_no}: non-finite value in {row!r}")
            times.append(t)
            pressures.append(p)
    return np.asarray(times, dtype=float), np.asarray(pressures, dtype=float)


@dataclass(frozen=True)
class UniformTrace:
    """Cuff pressure on an even time grid starting at `t0_s`."""

    t0_s: float
    rate_hz: float
    pressure_mmHg: np.ndarray

    @property
    def duration_s(self) -> float:
        return self.pressure_mmHg.size / self.rate_hz

    def time_s(self) -> np.ndarray:
        return self.t0_s + (np.arange(self.pressure_mmHg.size) + 0.5) / self.rate_hz


def clean_samples(t_s: np.ndarray, pressure_mmHg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop non-finite samples and order by time, merging repeated time stamps by their mean."""
    t = np.asarray(t_s, dtype=float).ravel()
    p = np.asarray(pressure_mmHg, dtype=float).ravel()
    if t.shape != p.shape:
        raise ValueError(f"time and pressure differ in length ({t.size} vs {p.size})")
    keep = np.isfinite(t) & np.isfinite(p)
    t, p = t[keep], p[keep]
    if t.size and np.any(np.diff(t) <= 0):
        order = np.argsort(t, kind="stable")
        t, p = t[order], p[order]
        t, inverse = np.unique(t, return_inverse=True)
        p = np.bincount(inverse, weights=p) / np.bincount(inverse)
    return t, p


def median_sample_rate_hz(t_s: np.ndarray) -> float:
    """Typical rate of uneven time stamps; 0 when it cannot be told."""
    if t_s.size < 2:
        return 0.0
    step = float(np.median(np.diff(t_s)))
    return 1.0 / step if step > 0 else 0.0


def resample_uniform(
    t_s: np.ndarray, pressure_mmHg: np.ndarray, rate_hz: float = ANALYSIS_RATE_HZ
) -> UniformTrace:
    """Average the piecewise-linear trace over each output bin.

    Bin averages (from the running integral) low-pass before decimating, so a 500 Hz trace does
    not alias its noise into the pulse band, while a 50 Hz trace is simply interpolated.
    """
    if t_s.size < 2:
        raise ValueError("need at least two samples to resample")
    integral = np.concatenate(
        ([0.0], np.cumsum(np.diff(t_s) * (pressure_mmHg[1:] + pressure_mmHg[:-1]) / 2))
    )
    n_bins = int(np.floor((t_s[-1] - t_s[0]) * rate_hz))
    edges = t_s[0] + np.arange(n_bins + 1) / rate_hz
    binned = np.diff(np.interp(edges, t_s, integral)) * rate_hz
    return UniformTrace(t0_s=float(t_s[0]), rate_hz=rate_hz, pressure_mmHg=binned)
