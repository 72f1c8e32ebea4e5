"""Clinic database: pragmas, migrations, typed round trips, the trace, and durability under kill -9."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from appliance.store import DB_NAME, Store, StoreError, audit, migrations, records, trace
from tests.clinic import Wall

REPO = Path(__file__).resolve().parents[1]


def other_connection(store: Store) -> sqlite3.Connection:
    return sqlite3.connect(store.path)


def insert_screening(store: Store, patient_id: int, **overrides: object) -> records.Screening:
    """A cleared initial screening of the left leg, with `overrides` applied."""
    args: dict[str, object] = dict(
        patient_id=patient_id,
        kind="initial",
        limb="leg",
        side="left",
        answers={},
        score=0,
        outcome="cleared",
        reasons=[],
        screened_by="dr-a",
    )
    args.update(overrides)
    return records.insert_screening(store, **args)  # type: ignore[arg-type]


def insert_lop(store: Store, patient_id: int, **overrides: object) -> records.LopMeasurement:
    """A seated left-leg LOP measured by the appliance, with `overrides` applied."""
    args: dict[str, object] = dict(
        patient_id=patient_id,
        limb="leg",
        side="left",
        posture="seated",
        cuff="thigh-11cm",
        first_mmhg=200.0,
        measured_by="appliance",
    )
    args.update(overrides)
    return records.insert_lop(store, **args)  # type: ignore[arg-type]


def make_session(store: Store, **overrides: object) -> records.Session:
    patient = records.find_patient(store, "P-1") or records.insert_patient(
        store, clinic_id="P-1", birth_year=1970
    )
    screening = insert_screening(store, patient.id)
    args: dict[str, object] = dict(
        patient_id=patient.id,
        screening_id=screening.id,
        protocol={"name": "standard-30-15-15-15", "version": 1, "title": "Standard"},
        limb="leg",
        side="left",
        posture="seated",
        cuff="thigh-11cm",
        clinician="dr-a",
    )
    args.update(overrides)
    return records.start_session(store, **args)  # type: ignore[arg-type]


# ---------------------------------------------------------------- opening and pragmas


def test_open_sets_wal_full_sync_and_foreign_keys(store: Store) -> None:
    assert store.query("PRAGMA journal_mode")[0][0] == "wal"
    assert store.query("PRAGMA synchronous")[0][0] == 2  # FULL
    assert store.query("PRAGMA foreign_keys")[0][0] == 1
    assert store.schema_version() == migrations.LATEST
    assert store.integrity_problems() == []
    # WAL is a property of the file: a plain connection sees it too.
    with other_connection(store) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_without_create_needs_a_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="no database"):
        Store.open(tmp_path / "nowhere", create=False)
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="no database"):
        Store.open(tmp_path / "empty", create=False)
    assert not (tmp_path / "empty" / DB_NAME).exists()


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / DB_NAME).write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store.open(tmp_path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    with sqlite3.connect(tmp_path / DB_NAME) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    with pytest.raises(StoreError, match="newer than this software"):
        Store.open(tmp_path)


# ---------------------------------------------------------------- migrations


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {r[0] for r in rows}


def test_migrates_an_empty_database_from_version_0(tmp_path: Path) -> None:
    sqlite3.connect(tmp_path / DB_NAME).close()
    with Store.open(tmp_path) as store:
        assert store.schema_version() == migrations.LATEST
    assert {
        "patients",
        "screenings",
        "lop_measurements",
        "sessions",
        "sets",
        "events",
        "alarms",
        "audit",
        "trace_chunks",
    } <= tables(tmp_path / DB_NAME)


def test_migrates_an_older_schema_forward_keeping_its_rows(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    assert migrations.migrate(conn, target=1) == 1
    conn.execute(
        "INSERT INTO patients (clinic_id, birth_year, created_at) VALUES ('OLD-1', 1950, 1.0)"
    )
    conn.execute("INSERT INTO audit (at, actor, action) VALUES (1.0, 'dr-old', 'patient.register')")
    conn.close()
    assert "trace_chunks" not in tables(tmp_path / DB_NAME)

    with Store.open(tmp_path) as store:
        assert store.schema_version() == 2
        patient = records.find_patient(store, "OLD-1")
        assert patient is not None and patient.birth_year == 1950
        assert [e.actor for e in audit.audit_trail(store)] == ["dr-old"]
        session = make_session(store)
        trace.insert_chunk(store, session_id=session.id, t0=10.0, rate_hz=10.0, mmhg=[1.0, 2.0])
        assert trace.read_trace(store, session.id).mmhg.tolist() == [1.0, 2.0]


def test_a_failing_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    broken = (
        *migrations.MIGRATIONS,
        migrations.Migration(
            migrations.LATEST + 1,
            "broken on purpose",
            ("CREATE TABLE half_done (x INTEGER)", "CREATE TABLE oops (syntax error here"),
        ),
    )
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    with pytest.raises(migrations.MigrationError, match="broken on purpose"):
        migrations.migrate(conn, migrations=broken)
    assert migrations.schema_version(conn) == migrations.LATEST
    assert not conn.in_transaction
    conn.close()
    assert "half_done" not in tables(tmp_path / DB_NAME)


def test_migrating_twice_is_harmless(tmp_path: Path) -> None:
    Store.open(tmp_path).close()
    with Store.open(tmp_path) as store:
        assert store.schema_version() == migrations.LATEST


def test_unknown_target_version_is_refused(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    with pytest.raises(migrations.MigrationError, match="no schema version"):
        migrations.migrate(conn, target=migrations.LATEST + 5)
    conn.close()


# ---------------------------------------------------------------- round trips


def test_patient_round_trip_and_unique_clinic_id(store: Store) -> None:
    made = records.insert_patient(store, clinic_id="P-7", age_band="61-70", limb_notes="L knee")
    assert records.get_patient(store, made.id) == made
    assert records.find_patient(store, "P-7") == made
    assert records.find_patient(store, "nobody") is None
    with pytest.raises(records.RecordError, match="already registered"):
        records.insert_patient(store, clinic_id="P-7", birth_year=1980)
    assert records.set_limb_notes(store, made.id, "R knee").limb_notes == "R knee"
    with pytest.raises(records.RecordNotFound):
        records.get_patient(store, 999)


def test_screening_round_trip(store: Store, wall: Wall) -> None:
    patient = records.insert_patient(store, clinic_id="P-1", birth_year=1960)
    made = records.insert_screening(
        store,
        patient_id=patient.id,
        kind="initial",
        limb="arm",
        side="right",
        answers={"pregnancy": False, "varicose_veins": True},
        score=4,
        outcome="caution",
        reasons=["Caution: Varicose veins"],
        screened_by="dr-a",
    )
    assert made.at == wall.t
    assert records.get_screening(store, made.id) == made
    assert made.answers == {"pregnancy": False, "varicose_veins": True}
    assert made.reasons == ("Caution: Varicose veins",)
    wall.t += 5
    confirmed = records.set_screening_confirmed(store, made.id, by="dr-b")
    assert (confirmed.confirmed_by, confirmed.confirmed_at) == ("dr-b", wall.t)
    assert records.latest_screening(store, patient.id, limb="arm", side="right") == confirmed
    assert records.latest_screening(store, patient.id, limb="leg") is None
    with pytest.raises(records.RecordError, match="limb"):
        insert_screening(store, patient.id, limb="tail", side="right")


def test_lop_round_trip_with_spread_flag(store: Store, wall: Wall) -> None:
    patient = records.insert_patient(store, clinic_id="P-1", birth_year=1960)
    close = insert_lop(store, patient.id, first_mmhg=204.0, second_mmhg=198.0)
    wall.t += 60
    apart = insert_lop(
        store,
        patient.id,
        posture="standing",
        first_mmhg=230.0,
        second_mmhg=250.0,
        method="doppler",
        measured_by="dr-a",
    )
    assert not close.spread_flag and close.lop_mmhg == 201.0 and close.spread_mmhg == 6.0
    assert apart.spread_flag and apart.spread_mmhg == 20.0
    assert records.get_lop(store, apart.id) == apart
    assert records.lop_history(store, patient.id) == [close, apart]
    assert records.latest_lop(store, patient.id, limb="leg", side="left") == apart
    assert records.latest_lop(store, patient.id, limb="leg", side="left", posture="seated") == close
    assert records.latest_lop(store, patient.id, limb="arm", side="left") is None
    for bad in (20.0, 320.0, float("nan")):
        with pytest.raises(records.RecordError, match="first_mmhg"):
            insert_lop(store, patient.id, cuff="c", first_mmhg=bad)
    with pytest.raises(records.RecordError, match="posture"):
        insert_lop(store, patient.id, posture="lying", cuff="c", first_mmhg=200.0)


def test_session_sets_events_alarms_round_trip(store: Store, wall: Wall) -> None:
    session = make_session(store)
    assert session.running and session.protocol["title"] == "Standard"
    lop = insert_lop(store, session.patient_id, first_mmhg=200.0, second_mmhg=204.0)
    session = records.set_session_target(
        store, session.id, lop_id=lop.id, pct_lop=80.0, target_mmhg=161.6
    )
    assert (session.lop_id, session.pct_lop, session.target_mmhg) == (lop.id, 80.0, 161.6)

    done = records.record_set(
        store,
        session_id=session.id,
        exercise_index=0,
        exercise="main",
        set_index=0,
        reps_target=30,
        reps_done=28,
        started_at=wall.t,
        ended_at=wall.t + 60,
    )
    rated = records.rate_set(store, done.id, rpe=6, pain=3)
    assert (rated.rpe, rated.pain, rated.reps_done) == (6, 3, 28)
    assert records.list_sets(store, session.id) == [rated]
    with pytest.raises(records.RecordError, match="already recorded"):
        records.record_set(
            store,
            session_id=session.id,
            exercise_index=0,
            exercise="main",
            set_index=0,
            started_at=wall.t,
            ended_at=wall.t,
        )
    with pytest.raises(records.RecordError, match="pain"):
        records.rate_set(store, done.id, rpe=5, pain=11)

    prompt = records.record_event(
        store, kind="prompt", name="prompt.do_reps", session_id=session.id, detail={"reps": 30}
    )
    note = records.record_event(store, kind="note", name="device.boot")
    assert records.list_events(store, session_id=session.id) == [prompt]
    assert records.list_events(store, after_id=prompt.id) == [note]
    with pytest.raises(records.RecordError, match="detail"):
        records.record_event(store, kind="note", name="x", detail={"bad": object()})
    with pytest.raises(records.RecordError, match="kind"):
        records.record_event(store, kind="Bad Kind", name="x")

    alarm = records.record_alarm(
        store, code="pressure.high", message="20 mmHg over set point", session_id=session.id
    )
    assert records.list_alarms(store, active_only=True) == [alarm]
    wall.t += 2
    cleared = records.clear_alarm(store, alarm.id)
    assert cleared.cleared_at == wall.t and not cleared.active
    assert records.list_alarms(store, active_only=True) == []

    wall.t += 100
    ended = records.end_session(store, session.id, outcome="completed")
    assert ended.ended_at == wall.t and ended.outcome == "completed" and not ended.running
    with pytest.raises(records.RecordError, match="already ended"):
        records.end_session(store, session.id, outcome="stopped")
    assert records.list_sessions(store, patient_id=session.patient_id) == [ended]
    assert records.list_sessions(store, since=wall.t + 1) == []


def test_a_screening_covers_one_session(store: Store) -> None:
    first = make_session(store)
    with pytest.raises(records.RecordError, match="already used"):
        records.start_session(
            store,
            patient_id=first.patient_id,
            screening_id=first.screening_id,
            protocol={"name": "x", "version": 1},
            limb="leg",
            side="left",
            posture="seated",
            cuff="c",
            clinician="dr-a",
        )
    assert records.session_for_screening(store, first.screening_id) == first


def test_session_needs_a_protocol_snapshot_and_a_known_screening(store: Store) -> None:
    with pytest.raises(records.RecordError, match="protocol"):
        make_session(store, protocol={"title": "no name"})
    with pytest.raises(records.RecordNotFound, match="screenings"):
        make_session(store, screening_id=999)


def test_abort_is_audited_with_the_session_end(store: Store) -> None:
    session = make_session(store)
    with pytest.raises(records.RecordError, match="reason"):
        records.abort_session(store, session.id, by="dr-a", reason="  ")
    aborted = records.abort_session(store, session.id, by="dr-a", reason="patient felt dizzy")
    assert aborted.outcome == "aborted" and aborted.end_reason == "patient felt dizzy"
    (entry,) = audit.audit_trail(store, action=audit.SESSION_ABORT)
    assert (entry.actor, entry.subject, entry.reason) == (
        "dr-a",
        f"session:{session.id}",
        "patient felt dizzy",
    )


def test_audit_trail_is_append_only(store: Store) -> None:
    entry = audit.record_audit(store, actor="dr-a", action="export", subject="all", detail={"n": 1})
    assert audit.audit_trail(store) == [entry]
    assert audit.audit_trail(store, action="protocol.save") == []
    with pytest.raises(audit.AuditError, match="actor"):
        audit.record_audit(store, actor=" ", action="export")
    with pytest.raises(audit.AuditError, match="action"):
        audit.record_audit(store, actor="dr-a", action="Export Now")
    with other_connection(store) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE audit SET reason = 'rewritten'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")


# ---------------------------------------------------------------- transactions


def test_every_write_is_committed_before_it_returns(store: Store) -> None:
    event = records.record_event(store, kind="note", name="visible")
    # A second connection sees the row at once: nothing waits in an open transaction.
    with other_connection(store) as conn:
        rows = conn.execute("SELECT id FROM events").fetchall()
    assert rows == [(event.id,)]
    assert not store._conn.in_transaction


def test_a_failed_transaction_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        records.record_event(store, kind="note", name="half")
        raise RuntimeError("boom")
    assert records.list_events(store) == []


def test_a_failed_nested_block_rolls_back_only_itself(store: Store) -> None:
    with store.transaction():
        kept = records.record_event(store, kind="note", name="kept")
        with pytest.raises(RuntimeError), store.transaction():
            records.record_event(store, kind="note", name="dropped")
            raise RuntimeError("inner")
    assert records.list_events(store) == [kept]


def test_threads_share_one_store(store: Store) -> None:
    # The web server's threads and the session runner write through the same Store.
    def write(n: int) -> None:
        for i in range(25):
            records.record_event(store, kind="note", name="thread", detail={"n": n, "i": i})

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(records.list_events(store)) == 100
    assert store.integrity_problems() == []


# ---------------------------------------------------------------- pressure trace


def test_trace_encoding_is_deci_mmhg_with_missing_samples() -> None:
    values = [0.0, 160.04, 160.06, -3.2, float("nan"), 5000.0]
    blob = trace.encode(values)
    assert len(blob) == 2 * len(values)
    decoded = trace.decode(blob)
    assert decoded[:4].tolist() == [0.0, 160.0, 160.1, -3.2]
    assert np.isnan(decoded[4])
    assert decoded[5] == 3276.7  # clipped, not wrapped around


def test_trace_recorder_chunks_and_splits_at_gaps(store: Store) -> None:
    session = make_session(store)
    recorder = trace.TraceRecorder(store, session.id, rate_hz=10.0, chunk_s=2.0)
    t0 = 1_750_000_000.0
    for i in range(50):  # 5 s at 10 Hz: chunks of 20, 20 and a buffered 10
        recorder.add(t0 + i / 10, 100.0 + i)
    assert len(store.query("SELECT id FROM trace_chunks")) == 2
    for i in range(5):  # a 10 s gap, then 0.5 s more
        recorder.add(t0 + 15.0 + i / 10, 50.0)
    recorder.flush()
    rows = store.query("SELECT t0, n FROM trace_chunks ORDER BY id")
    assert [(r["t0"] - t0, r["n"]) for r in rows] == [(0.0, 20), (2.0, 20), (4.0, 10), (15.0, 5)]
    got = trace.read_trace(store, session.id)
    assert len(got.t) == 55
    assert got.t[49] == pytest.approx(t0 + 4.9) and got.t[50] == pytest.approx(t0 + 15.0)
    assert got.mmhg[:50].tolist() == [100.0 + i for i in range(50)]
    window = trace.read_trace(store, session.id, start=t0 + 1.0, end=t0 + 1.95)
    assert len(window.t) == 10


def test_trace_refuses_slow_rates_and_unknown_sessions(store: Store) -> None:
    session = make_session(store)
    with pytest.raises(records.RecordError, match="rate_hz"):
        trace.insert_chunk(store, session_id=session.id, t0=0.0, rate_hz=5.0, mmhg=[1.0])
    with pytest.raises(records.RecordNotFound):
        trace.insert_chunk(store, session_id=999, t0=0.0, rate_hz=10.0, mmhg=[1.0])
    assert trace.read_trace(store, 999).t.size == 0


# ---------------------------------------------------------------- durability under kill -9

CHILD = """
import sys
from appliance.store import Store, records

store = Store.open(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    event = records.record_event(store, kind="note", name="durability", detail={"i": i})
    # Printed only after record_event returned: the app would now report it as saved.
    print(event.id, flush=True)
    i += 1
"""


def test_confirmed_writes_survive_sigkill_at_random_moments(tmp_path: Path) -> None:
    seed = random.randrange(1_000_000)
    rng = random.Random(seed)
    data_dir = tmp_path / "data"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    confirmed: set[int] = set()
    for iteration in range(20):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(data_dir)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            cwd=REPO,
            env=env,
        )
        assert child.stdout is not None
        if iteration % 4 == 0:
            # Some kills land while the child starts, creates or migrates the database.
            time.sleep(rng.uniform(0.0, 0.3))
        else:
            first = child.stdout.readline()
            assert first == b"ready\n", f"child did not start (seed {seed}): {first!r}"
            time.sleep(rng.uniform(0.0, 0.15))
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL
        lines = out.decode().split("\n")[:-1]  # the last piece may be a half-printed line
        confirmed |= {int(line) for line in lines if line.isdigit()}

    assert confirmed, f"no write was confirmed in 20 runs (seed {seed})"
    with sqlite3.connect(data_dir / DB_NAME) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
    missing = confirmed - stored
    assert not missing, f"confirmed but lost (seed {seed}): {sorted(missing)[:10]}"
    with Store.open(data_dir) as store:
        assert store.integrity_problems() == []
        assert store.schema_version() == migrations.LATEST
