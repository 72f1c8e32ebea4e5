"""Session records survive kill -9 at random moments: what was reported done is in the database."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from appliance import patients
from appliance.protocols import protocol_to_toml, validate_protocol_dict
from appliance.sessions.recovery import INTERRUPTED_REASON
from appliance.store import Store, records, trace
from hardware.sim.cuff import default_plant

REPO = Path(__file__).resolve().parents[1]
SEED = 5
SHORT: dict[str, Any] = {
    "schema": 1,
    "name": "short-test",
    "version": 1,
    "title": "Short test",
    "kind": "resistance",
    "limbs": ["arm"],
    "pct_lop": {"arm": 50},
    "exercises": [
        {
            "name": "curl",
            "cadence_s": 1.0,
            "sets": [{"reps": 8, "rest_after_s": 30}, {"reps": 8}],
        }
    ],
}


def prepare(data_dir: Path, protocol: dict[str, Any]) -> list[str]:
    """A custom protocol and a LOP on record, so each run goes straight to the exercise."""
    folder = data_dir / "protocols"
    folder.mkdir(parents=True)
    checked = validate_protocol_dict(protocol, origin="custom")
    (folder / f"{checked.name}.toml").write_text(protocol_to_toml(checked))
    plant = default_plant(SEED, limb="arm", posture="seated")
    with Store.open(data_dir) as store:
        who = patients.register_patient(store, f"SIM-{SEED}", age_band="31-45", by="dr a")
        lop = round(plant.true_lop_mmHg)
        records.insert_lop(
            store,
            patient_id=who.id,
            limb="arm",
            side="left",
            posture="seated",
            cuff=f"arm-{plant.patient.cuff_width_cm:g}cm",
            first_mmhg=lop,
            second_mmhg=lop + 1,
            method="doppler",
            measured_by="dr a",
        )
    return [
        sys.executable,
        "-m",
        "appliance",
        "sim",
        "session",
        "--protocol",
        checked.name,
        "--data-dir",
        str(data_dir),
        "--seed",
        str(SEED),
        "--reuse-lop",
        "--events",
        "--json",
    ]


def confirmed_events(out: bytes) -> list[dict[str, Any]]:
    """Events from complete lines only: the last one may have been cut by the kill."""
    lines = out.decode().split("\n")[:-1]
    return [json.loads(line)["event"] for line in lines if line.startswith('{"event"')]


def check(store: Store, confirmed: list[dict[str, Any]], seed: int) -> None:
    assert store.integrity_problems() == [], f"seed {seed}"
    for event in confirmed:
        rows = store.query("SELECT * FROM events WHERE id = ?", (event["event_id"],))
        assert rows, f"event {event['event_id']} {event['name']} reported but lost (seed {seed})"
        row = rows[0]
        assert (row["kind"], row["name"]) == (event["kind"], event["name"])
        assert json.loads(row["detail"]) == event["detail"]
        if event["name"] == "set.done":
            assert records.list_sets(store, row["session_id"]), f"set lost (seed {seed})"
        if event["name"] == "input.rating":
            rated = store.query(
                "SELECT rpe, pain FROM sets WHERE id = ?", (event["detail"]["set_id"],)
            )
            assert (rated[0]["rpe"], rated[0]["pain"]) == (
                event["detail"]["rpe"],
                event["detail"]["pain"],
            )
    for session in records.list_sessions(store):
        got = trace.read_trace(store, session.id)
        assert np.all(np.diff(got.t) > 0), f"trace of session {session.id} out of order"


def kill_runs(tmp_path: Path, protocol: dict[str, Any], kills: int, latest_s: float) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    argv = prepare(data_dir, protocol)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    confirmed: list[dict[str, Any]] = []
    for _ in range(kills):
        child = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO, env=env
        )
        time.sleep(rng.uniform(0.2, latest_s))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=60)
        confirmed += confirmed_events(out)
    with Store.open(data_dir, create=False) as store:
        check(store, confirmed, seed)
    assert confirmed, f"no run got as far as its first event (seed {seed})"

    # One more run to the end: it closes the sessions the kills left running.
    done = subprocess.run(argv, capture_output=True, cwd=REPO, env=env, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    report = json.loads(done.stdout.decode().split("\n")[-2])
    planned = sum(len(e["sets"]) for e in protocol["exercises"])
    assert report["outcome"] == "completed" and report["sets_done"] == planned
    with Store.open(data_dir, create=False) as store:
        check(store, confirmed + confirmed_events(done.stdout), seed)
        sessions = records.list_sessions(store)
        assert not any(s.running for s in sessions)
        for s in sessions[:-1]:
            assert s.outcome == "aborted" or s.outcome == "completed", (s.id, s.outcome)
            if s.outcome == "aborted":
                assert s.end_reason == INTERRUPTED_REASON
                assert s.ended_at >= s.started_at


def test_session_records_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    kill_runs(tmp_path, SHORT, kills=16, latest_s=4.0)


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_standard_session_records_survive_many_kills(tmp_path: Path) -> None:
    standard = SHORT | {
        "name": "standard-test",
        "exercises": [
            SHORT["exercises"][0]
            | {
                "cadence_s": 2.0,
                "sets": [
                    {"reps": 30, "rest_after_s": 30},
                    {"reps": 15, "rest_after_s": 30},
                    {"reps": 15, "rest_after_s": 30},
                    {"reps": 15},
                ],
            }
        ],
    }
    kill_runs(tmp_path, standard, kills=25, latest_s=15.0)
