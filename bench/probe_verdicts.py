"""What the sensing line's probe says about healthy lines: every verdict through whole sessions.

Each patient (the `varied_plant` seeds by default: cuffs, pumps, valves, heart rates and pulse
sizes the probe was not tuned on) is inflated to 80 % of the true LOP and does 30-15-15-15 with
30 s rests, its line free. A LAGGING verdict here is false: one alone makes the probe look again
within seconds, two in a row within 10 s fault SENSOR_LAG and empty the cuff. Prints, per
patient: the probes opened, judged, judged with an earlier beat taken out of the watch ("out",
held to 48 ms; the others to 65 ms) and cut short, the lagging verdicts, the slowest judged
half-drop, and the least and most drop the one-poll opening was judged to take (a valve takes
the same off the same cuff each time: a spread is the beat's doing).

With `--ectopic N[:COUPLING]` every patient has a premature beat every N-th beat (coupled at
COUPLING of an interval, 0.45 by default), which lands in some watches as an upstroke.

    python bench/probe_verdicts.py [--varied 1000-1047] [--project 0-11] [--ectopic 5] [--jobs 2]
"""

from __future__ import annotations

import argparse
import math
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.controller.line_probe import Verdict  # noqa: E402
from appliance.exercise import exercise_at_true_lop  # noqa: E402
from bench.feasibility import seeds  # noqa: E402
from hardware.sim.cuff import default_plant, varied_plant  # noqa: E402


def run_one(
    job: tuple[str, int, dict[str, float]],
) -> tuple[str, tuple[int, int, int, int], int, bool]:
    """One patient's line of figures, its probes (opened, judged, beat out, cut short), its
    false lagging verdicts, and whether it faulted."""
    kind, seed, patient = job
    plant = varied_plant(seed, **patient) if kind == "varied" else default_plant(seed, **patient)
    run = exercise_at_true_lop(plant, seed, rest_s=30.0)
    probes = run.probes
    judged = [r for r in probes if r.verdict != Verdict.UNJUDGED]
    cut = [r for r in probes if math.isnan(r.whole_mmHg)]
    lagging = [r for r in judged if r.verdict == Verdict.LAGGING]
    halves = [r.half_s for r in judged if r.half_s is not None]
    shortest = min((r.open_s for r in judged), default=None)
    one_poll = [r.whole_mmHg for r in judged if r.open_s == shortest]
    counts = (len(probes), len(judged), sum(r.beat_out for r in judged), len(cut))
    line = (
        f"{kind:7} {seed:5} {plant.patient.limb:4} {plant.patient.heart_rate_bpm:5.0f} "
        + "".join(f"{n:{w}}" for n, w in zip(counts, (6, 7, 5, 5), strict=True))
        + f" {len(lagging):7} "
        + (f"{1000 * max(halves):8.0f}" if halves else f"{'-':>8}")
        + (f" {min(one_poll):6.2f} {max(one_poll):6.2f}" if one_poll else f" {'-':>6} {'-':>6}")
        + f"  {run.final_state}"
    )
    for r in lagging:
        line += f"\n        lagging at {r.t:7.2f} s: opening {1000 * r.open_s:.0f} ms, "
        line += f"drop {r.whole_mmHg:.2f} mmHg, half "
        line += "never" if r.half_s is None else f"{1000 * r.half_s:.0f} ms"
        line += ", beat taken out" if r.beat_out else ""
    return line, counts, len(lagging), run.final_state == "FAULT"


def ectopics(spec: str) -> dict[str, float]:
    """`N[:COUPLING]` as `Patient` fields; nothing for an empty spec."""
    if not spec:
        return {}
    every, _, coupling = spec.partition(":")
    return {"ectopic_every": int(every), "ectopic_coupling": float(coupling or 0.45)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--varied", default="1000-1047", help="varied_plant seeds, e.g. 1000-1047")
    ap.add_argument("--project", default="", help="default_plant seeds, e.g. 0-11")
    ap.add_argument("--ectopic", default="", help="a premature beat every N-th, N[:COUPLING]")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    patient = ectopics(args.ectopic)
    jobs = [("varied", s, patient) for s in seeds(args.varied)] + [
        ("project", s, patient) for s in seeds(args.project)
    ]
    print("healthy lines, 30-15-15-15 at 80 % LOP; every probe of each session")
    if patient:
        print(
            f"premature beats: every {patient['ectopic_every']}-th, coupled at "
            f"{patient['ectopic_coupling']:g} of an interval"
        )
    print("plant    seed limb   bpm probes judged  out  cut lagging half_ms  drop1 (min  max)  end")
    with ProcessPoolExecutor(args.jobs) as pool:
        outcomes = list(pool.map(run_one, jobs))
    for line, _, _, _ in outcomes:
        print(line, flush=True)
    opened, judged, out, cut = (sum(c[i] for _, c, _, _ in outcomes) for i in range(4))
    print(f"{opened} probes, {judged} judged ({out} with the beat out), {cut} cut short")
    false = sum(lagging for _, _, lagging, _ in outcomes)
    faulted = sum(fault for _, _, _, fault in outcomes)
    print(
        f"{false} false lagging verdicts on {len(jobs)} healthy lines, {faulted} sessions faulted"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
