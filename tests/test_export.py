"""`bfr export`: CSV tables, self-contained HTML reports with plot and LOP history, clean errors."""

from __future__ import annotations

import csv
import datetime as dt
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance import export, patients, screening
from appliance.cli import main
from appliance.store import DB_NAME, Store, audit, records, trace


def at(day: str, clock: str = "10:00") -> float:
    return dt.datetime.fromisoformat(f"{day}T{clock}").astimezone().timestamp()


class Wall:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def no_answers() -> dict[str, bool]:
    return {q.id: False for q in screening.QUESTIONS}


def run_session(store: Store, wall: Wall, clinic_id: str, day: str, *, minutes: float = 5) -> int:
    """One recorded session: screening, two LOP readings, sets, events, an alarm, a trace."""
    wall.t = at(day)
    patient = patients.get_patient(store, clinic_id)
    records.insert_lop(
        store,
        patient_id=patient.id,
        limb="leg",
        side="left",
        posture="seated",
        cuff="thigh-11cm",
        first_mmhg=230.0,
        second_mmhg=200.0,  # 30 mmHg apart: flagged
        measured_by="appliance",
    )
    wall.t += 60
    lop = records.insert_lop(
        store,
        patient_id=patient.id,
        limb="leg",
        side="left",
        posture="seated",
        cuff="thigh-11cm",
        first_mmhg=201.0,
        second_mmhg=205.0,
        measured_by="appliance",
    )
    s = screening.record_screening(
        store, patient.id, no_answers(), limb="leg", side="left", by="dr-a"
    )
    session = records.start_session(
        store,
        patient_id=patient.id,
        screening_id=s.id,
        protocol={"name": "standard-30-15-15-15", "version": 1, "title": "Standard resistance"},
        limb="leg",
        side="left",
        posture="seated",
        cuff="thigh-11cm",
        clinician="dr-a",
    )
    target = 0.8 * lop.lop_mmhg
    records.set_session_target(store, session.id, lop_id=lop.id, pct_lop=80.0, target_mmhg=target)
    start = session.started_at
    n = int(minutes * 60 * 10)
    t = start + np.arange(n) / 10
    p = target + 8 * np.sin(np.arange(n) / 10 * 2 * np.pi / 2.0)  # a rep every 2 s
    p[100:110] = np.nan  # a sensor dropout
    recorder = trace.TraceRecorder(store, session.id, rate_hz=10.0)
    for ti, pi in zip(t, p, strict=True):
        recorder.add(float(ti), float(pi))
    recorder.flush()
    for i, reps in enumerate((30, 15)):
        set_start = start + 10 + i * 90
        done = records.record_set(
            store,
            session_id=session.id,
            exercise_index=0,
            exercise="main",
            set_index=i,
            reps_target=reps,
            reps_done=reps - i,
            started_at=set_start,
            ended_at=set_start + reps * 2,
        )
        records.rate_set(store, done.id, rpe=5 + i, pain=2 + i)
        records.record_event(
            store,
            kind="prompt",
            name="prompt.do_reps",
            session_id=session.id,
            detail={"reps": reps},
            at=set_start,
        )
    alarm = records.record_alarm(
        store,
        code="pressure.high",
        message="<b>20 mmHg</b> over set point",
        session_id=session.id,
        at=start + 50,
    )
    records.clear_alarm(store, alarm.id, at=start + 51.5)
    records.end_session(
        store,
        session.id,
        outcome="stopped",
        reason='=HYPERLINK("http://x") patient asked',
        at=start + minutes * 60,
    )
    return session.id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three recorded sessions of two patients, built once (every commit is an fsync)."""
    folder = tmp_path_factory.mktemp("recorded") / "data"
    wall = Wall(at("2025-03-01", "09:00"))
    with Store.open(folder, wall=wall) as store:
        patients.register_patient(
            store, "P-0042", birth_year=1958, limb_notes="L knee ACL", by="dr-a"
        )
        patients.register_patient(store, "P-0077", age_band="31-45", by="dr-a")
        run_session(store, wall, "P-0042", "2025-03-01")
        run_session(store, wall, "P-0042", "2025-03-08")
        run_session(store, wall, "P-0077", "2025-03-05", minutes=1)
    return folder


@pytest.fixture
def data_dir(recorded: Path, tmp_path: Path) -> Path:
    """A private copy per test, so audit entries of one test do not leak into another."""
    return Path(shutil.copytree(recorded, tmp_path / "data"))


@pytest.fixture
def store(data_dir: Path) -> Iterator[Store]:
    with Store.open(data_dir, create=False) as opened:
        yield opened


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_export_writes_csv_and_reports(store: Store, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = export.export_records(store, out, by="dr-a")
    assert (result.sessions, result.patients) == (3, 2)
    names = {p.name for p in result.files}
    assert {
        "sessions.csv",
        "sets.csv",
        "events.csv",
        "alarms.csv",
        "lop.csv",
        "traces.csv",
        "index.html",
    } <= names
    assert sum(1 for n in names if re.fullmatch(r"session-\d+\.html", n)) == 3

    sessions = read_csv(out / "sessions.csv")
    assert [s["clinic_id"] for s in sessions] == ["P-0042", "P-0077", "P-0042"]  # by start time
    first = sessions[0]
    assert first["protocol"] == "standard-30-15-15-15" and first["outcome"] == "stopped"
    assert first["lop_mmhg"] == "203.0" and first["pct_lop"] == "80.0"
    assert first["screening_outcome"] == "cleared"
    assert first["started_at"].startswith("2025-03-01T10:01:00")
    # A clinician's text that a spreadsheet would run as a formula is defused.
    assert first["end_reason"].startswith("'=HYPERLINK")

    sets = read_csv(out / "sets.csv")
    assert [(s["reps_done"], s["rpe"], s["pain"]) for s in sets[:2]] == [
        ("30", "5", "2"),
        ("14", "6", "3"),
    ]
    events = read_csv(out / "events.csv")
    assert {e["name"] for e in events} == {"prompt.do_reps"}
    assert events[0]["detail"] == '{"reps": 30}'
    alarms = read_csv(out / "alarms.csv")
    assert len(alarms) == 3 and alarms[0]["code"] == "pressure.high"
    lop = read_csv(out / "lop.csv")
    assert [row["spread_flag"] for row in lop if row["clinic_id"] == "P-0042"] == ["1", "0"] * 2

    traces = read_csv(out / "traces.csv")
    per_session = {}
    for row in traces:
        per_session[row["session_id"]] = per_session.get(row["session_id"], 0) + 1
    assert sorted(per_session.values()) == [600, 3000, 3000]
    assert traces[100]["mmhg"] == ""  # the dropout stays a gap
    assert float(traces[1]["t_s"]) == pytest.approx(0.1)


def test_the_report_is_self_contained_with_plot_and_lop_history(
    store: Store, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    export.export_records(store, out, by="dr-a", patient="P-0042")
    reports = sorted(out.glob("session-*.html"))
    assert len(reports) == 2
    page = reports[-1].read_text(encoding="utf-8")

    # Nothing fetched from elsewhere: printable offline, forever.
    assert not re.search(r"<(script|link|img|iframe)\b", page)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@media print" in page and "@page" in page

    svg = re.search(r"<svg.*?</svg>", page, re.S)
    assert svg is not None
    ET.fromstring(svg.group(0))  # well-formed
    assert 'class="trace"' in svg.group(0) and 'class="target"' in svg.group(0)
    assert svg.group(0).count('class="set"') == 2
    assert "<title>pressure.high</title>" in svg.group(0)

    assert "LOP history" in page
    history = page.split("LOP history", 1)[1].split("<h2>Events", 1)[0]
    # Both visits' measurements up to this session, the one used in bold, the spread flagged.
    assert history.count("<tr") - 1 == 4
    assert history.count('class="used"') == 1
    assert "spread 30 mmHg" in history
    assert "203 mmHg" in page and "80 % LOP" in page
    assert "L knee ACL" in page and "born 1958" in page
    # Text from the records is escaped, not interpreted.
    assert "<b>20 mmHg</b>" not in page and "&lt;b&gt;20 mmHg&lt;/b&gt;" in page

    index = (out / "index.html").read_text(encoding="utf-8")
    for report in reports:
        assert f'href="{report.name}"' in index


def test_filters_by_patient_and_date(store: Store, tmp_path: Path) -> None:
    result = export.export_records(
        store, tmp_path / "a", by="dr-a", patient="P-0042", since=dt.date(2025, 3, 2)
    )
    assert (result.sessions, result.patients) == (1, 1)
    rows = read_csv(tmp_path / "a" / "sessions.csv")
    assert [r["started_at"][:10] for r in rows] == ["2025-03-08"]
    assert {r["clinic_id"] for r in read_csv(tmp_path / "a" / "lop.csv")} == {"P-0042"}
    assert len(read_csv(tmp_path / "a" / "lop.csv")) == 2  # only since the date

    nothing = export.export_records(store, tmp_path / "b", by="dr-a", since=dt.date(2030, 1, 1))
    assert nothing.sessions == 0
    assert "No sessions match" in (tmp_path / "b" / "index.html").read_text()


def test_exports_are_audited(store: Store, tmp_path: Path) -> None:
    export.export_records(store, tmp_path / "out", by="dr-b", patient="P-0077")
    (entry,) = audit.audit_trail(store, action=audit.EXPORT)
    assert (entry.actor, entry.subject) == ("dr-b", "patient:P-0077")
    assert entry.detail["out_dir"] == str(tmp_path / "out")
    assert len(entry.detail["sessions"]) == 1 and "sessions.csv" in entry.detail["files"]


def test_library_errors(store: Store, tmp_path: Path) -> None:
    with pytest.raises(export.ExportError, match="unknown patient 'P-404'"):
        export.export_records(store, tmp_path / "out", by="dr-a", patient="P-404")
    assert not (tmp_path / "out").exists()
    (tmp_path / "file").write_text("x")
    with pytest.raises(export.ExportError, match="not a directory"):
        export.export_records(store, tmp_path / "file", by="dr-a")
    with pytest.raises(export.ExportError, match="expected a date like 2025-03-01"):
        export.parse_since("01/03/2025")
    assert audit.audit_trail(store, action=audit.EXPORT) == []


def test_plot_keeps_peaks_of_long_traces_and_breaks_at_gaps() -> None:
    n = 40 * 60 * 10  # 40 minutes at 10 Hz
    t = np.arange(n) / 10
    p = np.full(n, 160.0)
    p[12345] = 240.0  # one spike
    p[20000:20050] = np.nan
    svg = export.pressure_plot_svg(t, p, target_mmhg=160.0)
    ET.fromstring(svg)
    path = re.search(r'class="trace" d="([^"]+)"', svg)
    assert path is not None
    points = re.findall(r"[ML]([\d.]+) ([\d.]+)", path.group(1))
    assert len(points) < 2 * export.PLOT_COLUMNS + 10
    assert path.group(1).count("M") == 2  # the dropout splits the line
    # The spike survives the envelope: y axis 0-250 mmHg over 212 px from y=12, so 240 -> 20.5.
    assert min(float(y) for _, y in points) == pytest.approx(12 + 212 * (1 - 240 / 250), abs=0.1)
    assert "time (min)" in svg


# ---------------------------------------------------------------- the command


def test_cli_export(data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cli-out"
    code = main(
        [
            "export",
            "--data-dir",
            str(data_dir),
            "--patient",
            "P-0042",
            "--out",
            str(out),
            "--by",
            "tech-1",
        ]
    )
    assert code == 0, capsys.readouterr().err
    assert "exported 2 session(s) of 1 patient(s)" in capsys.readouterr().out
    assert (out / "sessions.csv").is_file() and len(list(out.glob("session-*.html"))) == 2
    with Store.open(data_dir, create=False) as store:
        (entry,) = audit.audit_trail(store, action=audit.EXPORT)
        assert entry.actor == "tech-1"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--patient", "P-404"], "unknown patient 'P-404'"),
        (["--since", "yesterday"], "bad date 'yesterday'"),
        (["--since", "2025-02-30"], "bad date '2025-02-30'"),
    ],
)
def test_cli_bad_input_exits_2_without_traceback(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    code = main(["export", "--data-dir", str(data_dir), "--out", str(tmp_path / "o"), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and "Traceback" not in err
    assert err.startswith("bfr export: ")


def test_cli_data_dir_without_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["export", "--data-dir", str(empty), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "no database in" in err and "Traceback" not in err
    assert not (empty / DB_NAME).exists()  # looking must not create one
    assert not (tmp_path / "o").exists()
