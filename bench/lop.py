"""Benchmark of the LOP estimator on the real arm-cuff recordings against reference SBP.

Run: `.venv/bin/python bench/lop.py [--per-recording]`

The 20 labelled recordings are split once, by alternating over their number order, into a
tuning half and a held-out half (see tests/data/oscillometric/README.md). Figures are printed
for the held-out half and for all twenty, beside the classic maximum-amplitude / fixed-ratio
estimate read from the same beats. The unlabelled recordings are run for robustness only.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from appliance.lop import estimate_lop, load_trace_csv  # noqa: E402
from appliance.lop.beats import (  # noqa: E402
    detect_beats,
    heart_period,
    high_cut_for,
    separate_pulsations,
)
from appliance.lop.ramps import DEFLATION, find_ramps  # noqa: E402
from appliance.lop.trace import clean_samples, resample_uniform  # noqa: E402

DATA_DIR = ROOT / "tests" / "data" / "oscillometric"
TUNING = ("bp8", "bp10", "bp12", "bp21", "bp31", "bp33", "bp36", "bp38", "bp42", "bp44")
HELD_OUT = ("bp9", "bp11", "bp13", "bp30", "bp32", "bp35", "bp37", "bp39", "bp43", "bp55")
# Classic systolic characteristic ratio of the raw oscillogram.
CLASSIC_SYSTOLIC_RATIO = 0.5
AAMI_WINDOW_MMHG = 10.0


@dataclass(frozen=True)
class Agreement:
    """Estimate-minus-reference statistics over a set of recordings."""

    n: int
    unmeasured: int
    mean: float
    sd: float
    within_10: float
    r: float

    def line(self, label: str) -> str:
        return (
            f"  {label:<36} n={self.n:<3} mean {self.mean:+5.1f}  SD {self.sd:4.1f}  "
            f"within +-10 {self.within_10:4.0%}  r {self.r:4.2f}  unmeasured {self.unmeasured}"
        )


def agreement(estimates: Sequence[float | None], references: Sequence[float]) -> Agreement:
    pairs = [(e, r) for e, r in zip(estimates, references, strict=True) if e is not None]
    est = np.array([e for e, _ in pairs], dtype=float)
    ref = np.array([r for _, r in pairs], dtype=float)
    error = est - ref
    nan = float("nan")
    return Agreement(
        n=len(pairs),
        unmeasured=len(estimates) - len(pairs),
        mean=float(error.mean()) if error.size else nan,
        sd=float(error.std(ddof=1)) if error.size > 1 else nan,
        within_10=float(np.mean(np.abs(error) <= AAMI_WINDOW_MMHG)) if error.size else nan,
        r=float(np.corrcoef(est, ref)[0, 1]) if error.size > 2 else nan,
    )


def load_labels(data_dir: Path = DATA_DIR) -> dict[str, float]:
    """Reference SBP per recording name (without .csv)."""
    with (data_dir / "labels.csv").open(newline="") as handle:
        return {
            row["recording"].removesuffix(".csv"): float(row["sbp_ref_mmHg"])
            for row in csv.DictReader(handle)
        }


def classic_ratio_estimate(t: np.ndarray, p: np.ndarray) -> float | None:
    """Plain baseline: raw beat amplitudes of the deflation, maximum, first fall below half."""
    t, p = clean_samples(t, p)
    trace = resample_uniform(t, p)
    ramps = [r for r in find_ramps(trace.pressure_mmHg, trace.rate_hz) if r.direction == DEFLATION]
    if not ramps:
        return None
    segment = trace.pressure_mmHg[ramps[0].start : ramps[0].stop]
    period, _ = heart_period(
        separate_pulsations(segment, trace.rate_hz, 3.5).signal_mmHg, trace.rate_hz
    )
    beats = detect_beats(separate_pulsations(segment, trace.rate_hz, high_cut_for(period)), period)
    if len(beats) < 3:
        return None
    order = np.argsort(beats.cuff_mmHg)
    cuff, amplitude = beats.cuff_mmHg[order], beats.amplitude_mmHg[order]
    peak = int(np.argmax(amplitude))
    threshold = CLASSIC_SYSTOLIC_RATIO * amplitude[peak]
    for j in range(peak + 1, cuff.size):
        if amplitude[j] < threshold:
            share = (amplitude[j - 1] - threshold) / (amplitude[j - 1] - amplitude[j])
            return float(cuff[j - 1] + share * (cuff[j] - cuff[j - 1]))
    return None


def _number(name: str) -> int:
    digits = "".join(ch for ch in name if ch.isdigit())
    return int(digits) if digits else 10**6


def real_recordings_section(
    data_dir: Path = DATA_DIR, per_recording: bool = False
) -> dict[str, Agreement]:
    """Labelled recordings: agreement with reference SBP, held-out half and all, vs baseline."""
    labels = load_labels(data_dir)
    names = sorted(labels, key=_number)
    ours: dict[str, float | None] = {}
    classic: dict[str, float | None] = {}
    print(
        f"Real arm-cuff recordings with reference SBP ({len(names)}), estimate - reference [mmHg]"
    )
    for name in names:
        t, p = load_trace_csv(data_dir / f"{name}.csv")
        estimate = estimate_lop(t, p)
        ours[name] = estimate.lop_mmHg
        classic[name] = classic_ratio_estimate(t, p)
        if per_recording:
            part = "tuning" if name in TUNING else "held-out"
            value = "-" if estimate.lop_mmHg is None else f"{estimate.lop_mmHg:6.1f}"
            base = "-" if classic[name] is None else f"{classic[name]:6.1f}"
            print(
                f"    {name:<6} {part:<8} ref {labels[name]:5.0f}  LOP {value:>6}  "
                f"classic {base:>6}  conf {estimate.confidence:.2f}  {estimate.reason or ''}"
            )
    results: dict[str, Agreement] = {}
    for subset_name, subset in (
        ("held-out", HELD_OUT),
        ("tuning", TUNING),
        ("all", tuple(names)),
    ):
        refs = [labels[n] for n in subset]
        results[f"lop {subset_name}"] = agreement([ours[n] for n in subset], refs)
        results[f"classic {subset_name}"] = agreement([classic[n] for n in subset], refs)
        print(results[f"lop {subset_name}"].line(f"LOP estimator, {subset_name}"))
        print(results[f"classic {subset_name}"].line(f"max-amplitude / ratio 0.5, {subset_name}"))
    return results


def unlabelled_section(data_dir: Path = DATA_DIR) -> Counter[str]:
    """Recordings without reference: each must give a sane value or a clear reason."""
    labelled = set(load_labels(data_dir))
    files = sorted(
        (f for f in data_dir.glob("*.csv") if f.stem not in labelled and f.name != "labels.csv"),
        key=lambda f: _number(f.stem),
    )
    outcome: Counter[str] = Counter()
    values: list[float] = []
    reasons: list[str] = []
    for path in files:
        estimate = estimate_lop(*load_trace_csv(path))
        if estimate.lop_mmHg is None:
            outcome[str(estimate.failure)] += 1
            reasons.append(f"    {path.stem}: {estimate.reason}")
        else:
            outcome["value"] += 1
            values.append(estimate.lop_mmHg)
    print(
        f"Unlabelled recordings ({len(files)}): {outcome['value']} gave a value, "
        f"{len(files) - outcome['value']} a reason"
    )
    if values:
        print(f"  values {min(values):.0f}-{max(values):.0f} mmHg, median {np.median(values):.0f}")
    for line in reasons:
        print(line)
    return outcome


# Sections run in this order; each prints its own block. Further sections (for example one on
# simulated patients) are appended here.
SECTIONS: list[Callable[[argparse.Namespace], object]] = [
    lambda args: real_recordings_section(per_recording=args.per_recording),
    lambda args: unlabelled_section(),
]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--per-recording", action="store_true", help="list every labelled recording"
    )
    args = parser.parse_args(argv)
    for index, section in enumerate(SECTIONS):
        if index:
            print()
        section(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
