"""Exports for the clinic: CSV tables and a printable, self-contained HTML report per session."""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from appliance import __version__
from appliance.store import Store, audit, records, trace
from appliance.store.records import (
    Alarm,
    Event,
    LopMeasurement,
    Patient,
    Screening,
    Session,
    SetRecord,
)

# A report plot of a 40-minute session at 10 Hz would carry 24 000 points; a min/max envelope of
# this many columns looks the same on paper and keeps the file small.
PLOT_COLUMNS = 900
# Cells a spreadsheet would run as a formula (CSV injection); text gets a leading quote.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class ExportError(Exception):
    """The export cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class ExportResult:
    out_dir: Path
    files: tuple[Path, ...]
    sessions: int
    patients: int


def parse_since(text: str) -> dt.date:
    """A `--since` value: an ISO date such as 2025-03-01."""
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise ExportError(f"bad date {text!r}: expected a date like 2025-03-01") from None


def export_records(
    store: Store,
    out_dir: Path | str,
    *,
    by: str,
    patient: str | None = None,
    since: dt.date | None = None,
) -> ExportResult:
    """Write sessions, sets, events, alarms, LOP and traces as CSV plus one HTML report per
    session (and an index) into `out_dir`; the export is logged in the audit trail."""
    if not by.strip():
        raise ExportError("the person exporting must be named")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    since_t = None
    if since is not None:
        since_t = dt.datetime.combine(since, dt.time.min).astimezone().timestamp()

    with store.reading():
        patient_id = None
        if patient is not None:
            found = records.find_patient(store, patient)
            if found is None:
                raise ExportError(f"unknown patient {patient!r}")
            patient_id = found.id
            patients = {found.id: found}
        else:
            patients = {p.id: p for p in records.list_patients(store)}
        sessions = records.list_sessions(store, patient_id=patient_id, since=since_t)
        bundle = _Bundle.collect(store, patients, sessions, since_t)

    try:
        out.mkdir(parents=True, exist_ok=True)
        files = bundle.write(out, exported_by=by, exported_at=store.now())
    except OSError as exc:
        raise ExportError(f"cannot write to {out}: {exc}") from exc

    audit.record_audit(
        store,
        actor=by,
        action=audit.EXPORT,
        subject=f"patient:{patient}" if patient else "all",
        detail={
            "out_dir": str(out),
            "since": since.isoformat() if since else None,
            "sessions": [s.id for s in sessions],
            "files": [f.name for f in files],
        },
    )
    return ExportResult(out, tuple(files), len(sessions), len({s.patient_id for s in sessions}))


@dataclass
class _Bundle:
    """Everything one export needs, read in one snapshot."""

    patients: dict[int, Patient]
    sessions: list[Session]
    screenings: dict[int, Screening]
    sets: dict[int, list[SetRecord]]
    events: dict[int, list[Event]]
    alarms: dict[int, list[Alarm]]
    traces: dict[int, trace.Trace]
    lop: dict[int, list[LopMeasurement]]
    since_t: float | None

    @classmethod
    def collect(
        cls,
        store: Store,
        patients: dict[int, Patient],
        sessions: list[Session],
        since_t: float | None,
    ) -> _Bundle:
        ids = [s.id for s in sessions]
        return cls(
            patients=patients,
            sessions=sessions,
            screenings={s.id: records.get_screening(store, s.screening_id) for s in sessions},
            sets={i: records.list_sets(store, i) for i in ids},
            events={i: records.list_events(store, session_id=i) for i in ids},
            alarms={i: records.list_alarms(store, session_id=i) for i in ids},
            traces={i: trace.read_trace(store, i) for i in ids},
            lop={pid: records.lop_history(store, pid) for pid in patients},
            since_t=since_t,
        )

    def clinic_id(self, session: Session) -> str:
        return self.patients[session.patient_id].clinic_id

    def lop_by_id(self) -> dict[int, LopMeasurement]:
        return {m.id: m for history in self.lop.values() for m in history}

    def write(self, out: Path, *, exported_by: str, exported_at: float) -> list[Path]:
        files = [
            self._csv(out / "sessions.csv", SESSION_COLUMNS, self._session_rows()),
            self._csv(out / "sets.csv", SET_COLUMNS, self._set_rows()),
            self._csv(out / "events.csv", EVENT_COLUMNS, self._event_rows()),
            self._csv(out / "alarms.csv", ALARM_COLUMNS, self._alarm_rows()),
            self._csv(out / "lop.csv", LOP_COLUMNS, self._lop_rows()),
            self._csv(out / "traces.csv", TRACE_COLUMNS, self._trace_rows()),
        ]
        footer = f"Exported {_when(exported_at)} by {exported_by} with bfr {__version__}"
        for session in self.sessions:
            path = out / f"session-{session.id}.html"
            path.write_text(self.report(session, footer), encoding="utf-8")
            files.append(path)
        index = out / "index.html"
        index.write_text(self.index(footer), encoding="utf-8")
        files.append(index)
        return files

    @staticmethod
    def _csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Path:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for row in rows:
                writer.writerow([_cell(v) for v in row])
        return path

    # ------------------------------------------------------------ CSV rows

    def _session_rows(self) -> Iterable[Sequence[Any]]:
        lop = self.lop_by_id()
        for s in self.sessions:
            screening = self.screenings[s.id]
            used = lop.get(s.lop_id) if s.lop_id is not None else None
            yield (
                s.id,
                self.clinic_id(s),
                _when(s.started_at),
                _when(s.ended_at),
                None if s.ended_at is None else round(s.ended_at - s.started_at, 1),
                s.protocol_name,
                s.protocol_version,
                s.limb,
                s.side,
                s.posture,
                s.cuff,
                None if used is None else round(used.lop_mmhg, 1),
                s.pct_lop,
                s.target_mmhg,
                s.outcome,
                s.end_reason,
                s.clinician,
                screening.outcome,
                screening.score,
                screening.override_reason or "",
            )

    def _set_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.sessions:
            for r in self.sets[s.id]:
                yield (
                    s.id,
                    self.clinic_id(s),
                    r.exercise_index,
                    r.exercise,
                    r.set_index,
                    r.reps_target,
                    r.reps_done,
                    r.duration_s,
                    _when(r.started_at),
                    _when(r.ended_at),
                    r.rpe,
                    r.pain,
                )

    def _event_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.sessions:
            for e in self.events[s.id]:
                yield (
                    s.id,
                    self.clinic_id(s),
                    e.id,
                    _when(e.at, ms=True),
                    round(e.at - s.started_at, 3),
                    e.kind,
                    e.name,
                    json.dumps(e.detail, sort_keys=True),
                )

    def _alarm_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.sessions:
            for a in self.alarms[s.id]:
                yield (
                    s.id,
                    self.clinic_id(s),
                    a.id,
                    _when(a.at, ms=True),
                    a.code,
                    a.message,
                    _when(a.cleared_at, ms=True),
                    json.dumps(a.detail, sort_keys=True),
                )

    def _lop_rows(self) -> Iterable[Sequence[Any]]:
        for pid, history in self.lop.items():
            for m in history:
                if self.since_t is not None and m.at < self.since_t:
                    continue
                yield (
                    self.patients[pid].clinic_id,
                    m.id,
                    _when(m.at),
                    m.limb,
                    m.side,
                    m.posture,
                    m.cuff,
                    m.first_mmhg,
                    m.second_mmhg,
                    round(m.lop_mmhg, 1),
                    m.spread_mmhg,
                    int(m.spread_flag),
                    m.method,
                    m.measured_by,
                )

    def _trace_rows(self) -> Iterable[Sequence[Any]]:
        for s in self.sessions:
            tr = self.traces[s.id]
            for t, p in zip(tr.t.tolist(), tr.mmhg.tolist(), strict=True):
                yield (
                    s.id,
                    self.clinic_id(s),
                    round(t - s.started_at, 2),
                    None if math.isnan(p) else p,
                )

    # ------------------------------------------------------------ HTML

    def index(self, footer: str) -> str:
        rows = []
        for s in self.sessions:
            rows.append(
                "<tr>"
                f'<td><a href="session-{s.id}.html">{s.id}</a></td>'
                f"<td>{_e(self.clinic_id(s))}</td>"
                f"<td>{_e(_when(s.started_at, human=True))}</td>"
                f"<td>{_e(s.protocol_name)} v{s.protocol_version}</td>"
                f"<td>{_e(s.side)} {_e(s.limb)}</td>"
                f"<td>{_e(s.outcome or 'running')}</td>"
                "</tr>"
            )
        body = (
            "<h1>BFR sessions</h1>"
            + _table(["Session", "Patient", "Started", "Protocol", "Limb", "Outcome"], rows)
            if rows
            else "<h1>BFR sessions</h1><p>No sessions match this export.</p>"
        )
        return _page("BFR sessions", body, footer)

    def report(self, s: Session, footer: str) -> str:
        patient = self.patients[s.patient_id]
        screening = self.screenings[s.id]
        lop = self.lop_by_id()
        used = lop.get(s.lop_id) if s.lop_id is not None else None
        tr = self.traces[s.id]
        age = f"born {patient.birth_year}" if patient.birth_year is not None else patient.age_band
        duration = "" if s.ended_at is None else _duration(s.ended_at - s.started_at)
        session_kv = [
            ("Patient", f"{patient.clinic_id} ({age})"),
            ("Limb notes", patient.limb_notes or "-"),
            ("Protocol", f"{s.protocol.get('title', s.protocol_name)}"),
            ("Protocol file", f"{s.protocol_name} version {s.protocol_version}"),
            ("Limb", f"{s.side} {s.limb}, {s.posture}, cuff {s.cuff}"),
            (
                "LOP",
                "-"
                if used is None
                else f"{used.lop_mmhg:.0f} mmHg (measurement {used.id}, {_when(used.at, human=True)})",
            ),
            ("Cuff pressure", _target_text(s)),
            ("Clinician", s.clinician),
            ("Started", _when(s.started_at, human=True)),
            ("Ended", f"{_when(s.ended_at, human=True)} ({duration})" if duration else "running"),
            ("Outcome", f"{s.outcome or 'running'}{': ' + s.end_reason if s.end_reason else ''}"),
        ]
        screening_kv = [
            ("Screened", f"{_when(screening.at, human=True)} by {screening.screened_by}"),
            ("Result", f"{screening.outcome}, Kacin score {screening.score}"),
            ("Findings", "; ".join(screening.reasons) or "none"),
        ]
        if screening.confirmed_by:
            screening_kv.append(
                (
                    "Caution confirmed",
                    f"by {screening.confirmed_by}, {_when(screening.confirmed_at, human=True)}",
                )
            )
        if screening.override_by:
            screening_kv.append(
                (
                    "Override",
                    f"by {screening.override_by}, {_when(screening.override_at, human=True)}:"
                    f" {screening.override_reason}",
                )
            )

        set_rows = [
            "<tr>"
            f"<td>{_e(r.exercise)}</td><td>{r.set_index + 1}</td>"
            f"<td>{_num(r.reps_done)} / {_num(r.reps_target)}</td>"
            f"<td>{_num(r.duration_s if r.duration_s is not None else r.ended_at - r.started_at)}"
            " s</td>"
            f"<td>{_num(r.rpe)}</td><td>{_num(r.pain)}</td>"
            "</tr>"
            for r in self.sets[s.id]
        ]
        alarm_rows = [
            "<tr>"
            f"<td>{_e(_clock(a.at, s.started_at))}</td><td>{_e(a.code)}</td>"
            f"<td>{_e(a.message)}</td>"
            f"<td>{_e(_clock(a.cleared_at, s.started_at)) if a.cleared_at else 'active'}</td>"
            "</tr>"
            for a in self.alarms[s.id]
        ]
        history = [m for m in self.lop[s.patient_id] if m.at <= (s.ended_at or s.started_at)]
        lop_rows = [
            f'<tr class="{"used" if m.id == s.lop_id else ""}">'
            f"<td>{_e(_when(m.at, human=True))}</td>"
            f"<td>{_e(m.side)} {_e(m.limb)}</td><td>{_e(m.posture)}</td><td>{_e(m.cuff)}</td>"
            f"<td>{m.first_mmhg:.0f}</td><td>{_num(m.second_mmhg, '.0f')}</td>"
            f"<td>{m.lop_mmhg:.0f}</td>"
            f"<td>{'spread ' + format(m.spread_mmhg or 0, '.0f') + ' mmHg' if m.spread_flag else ''}"
            "</td>"
            f"<td>{_e(m.method)}</td>"
            "</tr>"
            for m in history
        ]
        event_rows = [
            "<tr>"
            f"<td>{_e(_clock(e.at, s.started_at))}</td><td>{_e(e.kind)}</td><td>{_e(e.name)}</td>"
            f"<td>{_e(_detail(e.detail))}</td>"
            "</tr>"
            for e in self.events[s.id]
        ]
        plot = (
            pressure_plot_svg(
                tr.t - s.started_at,
                tr.mmhg,
                target_mmhg=s.target_mmhg,
                sets=[
                    (r.started_at - s.started_at, r.ended_at - s.started_at)
                    for r in self.sets[s.id]
                ],
                alarms=[(a.at - s.started_at, a.code) for a in self.alarms[s.id]],
            )
            if len(tr.t)
            else "<p>No pressure trace was recorded.</p>"
        )
        body = "".join(
            [
                f"<h1>BFR session {s.id}</h1>",
                f'<p class="lead">{_e(patient.clinic_id)} &middot; '
                f"{_e(_when(s.started_at, human=True))} &middot; {_e(s.protocol_name)}</p>",
                "<section><h2>Session</h2>",
                _key_values(session_kv),
                "</section><section><h2>Screening</h2>",
                _key_values(screening_kv),
                "</section><section><h2>Cuff pressure</h2>",
                plot,
                "</section><section><h2>Sets</h2>",
                _table(["Exercise", "Set", "Reps", "Time", "Effort (RPE)", "Pain"], set_rows)
                if set_rows
                else "<p>No sets recorded.</p>",
                "</section><section><h2>Alarms</h2>",
                _table(["At", "Alarm", "Message", "Cleared"], alarm_rows)
                if alarm_rows
                else "<p>No alarms.</p>",
                "</section><section><h2>LOP history</h2>",
                _table(
                    [
                        "Measured",
                        "Limb",
                        "Posture",
                        "Cuff",
                        "1st",
                        "2nd",
                        "LOP mmHg",
                        "Flag",
                        "Method",
                    ],
                    lop_rows,
                )
                if lop_rows
                else "<p>No LOP measurements.</p>",
                '<p class="note">The row in bold is the LOP this session used. A spread over'
                f" {records.LOP_SPREAD_FLAG_MMHG:g} mmHg between the two readings is flagged.</p>",
                '</section><section class="events"><h2>Events</h2>',
                _table(["At", "Kind", "Event", "Detail"], event_rows)
                if event_rows
                else "<p>No events.</p>",
                "</section>",
            ]
        )
        return _page(f"BFR session {s.id} - {patient.clinic_id}", body, footer)


SESSION_COLUMNS = (
    "session_id",
    "clinic_id",
    "started_at",
    "ended_at",
    "duration_s",
    "protocol",
    "protocol_version",
    "limb",
    "side",
    "posture",
    "cuff",
    "lop_mmhg",
    "pct_lop",
    "target_mmhg",
    "outcome",
    "end_reason",
    "clinician",
    "screening_outcome",
    "screening_score",
    "screening_override_reason",
)
SET_COLUMNS = (
    "session_id",
    "clinic_id",
    "exercise_index",
    "exercise",
    "set_index",
    "reps_target",
    "reps_done",
    "duration_s",
    "started_at",
    "ended_at",
    "rpe",
    "pain",
)
EVENT_COLUMNS = ("session_id", "clinic_id", "event_id", "at", "t_s", "kind", "name", "detail")
ALARM_COLUMNS = (
    "session_id",
    "clinic_id",
    "alarm_id",
    "at",
    "code",
    "message",
    "cleared_at",
    "detail",
)
LOP_COLUMNS = (
    "clinic_id",
    "lop_id",
    "at",
    "limb",
    "side",
    "posture",
    "cuff",
    "first_mmhg",
    "second_mmhg",
    "lop_mmhg",
    "spread_mmhg",
    "spread_flag",
    "method",
    "measured_by",
)
TRACE_COLUMNS = ("session_id", "clinic_id", "t_s", "mmhg")


# ---------------------------------------------------------------- the pressure plot


def pressure_plot_svg(
    t_s: np.ndarray,
    mmhg: np.ndarray,
    *,
    target_mmhg: float | None = None,
    sets: Sequence[tuple[float, float]] = (),
    alarms: Sequence[tuple[float, str]] = (),
    width: int = 720,
    height: int = 260,
) -> str:
    """Cuff pressure against session time as inline SVG: sets shaded, target and +-10 % band,
    alarms marked. Gaps (missing samples) break the line instead of bridging it."""
    t_s = np.asarray(t_s, dtype=float)
    mmhg = np.asarray(mmhg, dtype=float)
    left, right, top, bottom = 52, 14, 12, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    t_end = max(float(t_s[-1]) if len(t_s) else 1.0, 1.0)
    finite = mmhg[np.isfinite(mmhg)]
    peak = max(float(finite.max()) if len(finite) else 0.0, (target_mmhg or 0.0) * 1.15, 50.0)
    y_top = math.ceil(peak / 50.0) * 50.0

    def x(t: float) -> float:
        return left + plot_w * min(max(t, 0.0), t_end) / t_end

    def y(p: float) -> float:
        return top + plot_h * (1.0 - min(max(p, 0.0), y_top) / y_top)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
        f' width="100%" role="img" aria-label="Cuff pressure in mmHg against time">',
        "<style>text{font:11px sans-serif;fill:#333}.grid{stroke:#ddd;stroke-width:1}"
        ".axis{stroke:#333;stroke-width:1}.trace{fill:none;stroke:#1f4e9c;stroke-width:1.2}"
        ".target{stroke:#b03a2e;stroke-width:1;stroke-dasharray:5 3}.band{fill:#b03a2e;opacity:.08}"
        ".set{fill:#2e7d32;opacity:.08}.alarm{fill:#b03a2e}</style>",
    ]
    for start, end in sets:
        parts.append(
            f'<rect class="set" x="{x(start):.1f}" y="{top}" width="{max(x(end) - x(start), 0.5):.1f}"'
            f' height="{plot_h}"/>'
        )
    for value in _ticks(0.0, y_top, 6):
        parts.append(
            f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{y(value):.1f}"'
            f' y2="{y(value):.1f}"/>'
            f'<text x="{left - 6}" y="{y(value) + 4:.1f}" text-anchor="end">{value:g}</text>'
        )
    minutes = t_end >= 120
    for value in _ticks(0.0, t_end / 60 if minutes else t_end, 10):
        tx = x(value * 60 if minutes else value)
        parts.append(
            f'<line class="grid" x1="{tx:.1f}" x2="{tx:.1f}" y1="{top}" y2="{top + plot_h}"/>'
            f'<text x="{tx:.1f}" y="{top + plot_h + 15}" text-anchor="middle">{value:g}</text>'
        )
    if target_mmhg:
        parts.append(
            f'<rect class="band" x="{left}" y="{y(target_mmhg * 1.1):.1f}" width="{plot_w}"'
            f' height="{y(target_mmhg * 0.9) - y(target_mmhg * 1.1):.1f}"/>'
            f'<line class="target" x1="{left}" x2="{left + plot_w}" y1="{y(target_mmhg):.1f}"'
            f' y2="{y(target_mmhg):.1f}"/>'
        )
    path = _trace_path(t_s, mmhg, x, y, plot_w)
    if path:
        parts.append(f'<path class="trace" d="{path}"/>')
    for at, code in alarms:
        ax = x(at)
        parts.append(
            f'<path class="alarm" d="M{ax:.1f} {top}l-4 -8h8z"><title>{_e(code)}</title></path>'
        )
    parts.append(
        f'<line class="axis" x1="{left}" x2="{left}" y1="{top}" y2="{top + plot_h}"/>'
        f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}"'
        f' y2="{top + plot_h}"/>'
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle">'
        f"time ({'min' if minutes else 's'})</text>"
        f'<text x="12" y="{top + plot_h / 2:.0f}" text-anchor="middle"'
        f' transform="rotate(-90 12 {top + plot_h / 2:.0f})">mmHg</text>'
        "</svg>"
    )
    return "".join(parts)


def _trace_path(t_s: np.ndarray, mmhg: np.ndarray, x: Any, y: Any, columns: int) -> str:
    """SVG path data; long traces become a per-column min/max envelope so peaks survive."""
    if len(t_s) > 2 * max(columns, PLOT_COLUMNS):
        t_s, mmhg = _envelope(t_s, mmhg, max(columns, PLOT_COLUMNS))
    commands: list[str] = []
    pen_down = False
    for t, p in zip(t_s.tolist(), mmhg.tolist(), strict=True):
        if math.isnan(p):
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{x(t):.1f} {y(p):.1f}")
        pen_down = True
    return "".join(commands)


def _envelope(t_s: np.ndarray, mmhg: np.ndarray, columns: int) -> tuple[np.ndarray, np.ndarray]:
    edges = np.linspace(t_s[0], t_s[-1], columns + 1)
    which = np.clip(np.searchsorted(edges, t_s, side="right") - 1, 0, columns - 1)
    out_t: list[float] = []
    out_p: list[float] = []
    for column in range(columns):
        values = mmhg[which == column]
        if not len(values):
            continue
        good = values[np.isfinite(values)]
        mid = float((edges[column] + edges[column + 1]) / 2)
        if not len(good):
            out_t.append(mid)
            out_p.append(math.nan)
            continue
        out_t += [mid, mid]
        out_p += [float(good.min()), float(good.max())]
    return np.asarray(out_t), np.asarray(out_p)


def _ticks(low: float, high: float, most: int) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten) from low to high, at most `most`."""
    span = max(high - low, 1e-9)
    for power in range(-2, 6):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0**power
            if span / step <= most:
                first = math.ceil(low / step) * step
                count = int(math.floor((high - first) / step + 1e-9)) + 1
                return [round(first + i * step, 6) for i in range(count)]
    return [low, high]


# ---------------------------------------------------------------- page pieces


_CSS = """
body{font:11pt/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#111;margin:2em auto;
max-width:60em;padding:0 1em}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.1em;margin:1.4em 0 .4em;border-bottom:1px solid #999}
.lead{color:#444;margin:0 0 1em}table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:.2em .5em;border-bottom:1px solid #ddd;vertical-align:top}
th{background:#f2f2f2}table.kv th{width:12em;background:none;font-weight:600}
tr.used td{font-weight:700}.note{font-size:.85em;color:#555}.events table{font-size:.8em}
footer{margin-top:2em;font-size:.8em;color:#555;border-top:1px solid #ccc;padding-top:.4em}
@page{size:A4;margin:15mm}
@media print{body{margin:0;max-width:none;font-size:10pt}a{color:inherit;text-decoration:none}
section{break-inside:avoid}.events{break-inside:auto}thead{display:table-header-group}
tr{break-inside:avoid}}
"""


def _page(title: str, body: str, footer: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"{body}<footer>{_e(footer)}</footer></body></html>\n"
    )


def _table(headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _key_values(pairs: Sequence[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def _target_text(s: Session) -> str:
    if s.target_mmhg is None:
        return "-"
    pct = f" ({s.pct_lop:g} % LOP)" if s.pct_lop is not None else ""
    return f"{s.target_mmhg:.0f} mmHg{pct}"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | int | None, fmt: str = "g") -> str:
    return "-" if value is None else format(value, fmt)


def _detail(detail: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(detail.items()))


def _when(t: float | None, *, ms: bool = False, human: bool = False) -> str:
    """Local time with its UTC offset, so a reader anywhere knows the instant."""
    if t is None:
        return ""
    moment = dt.datetime.fromtimestamp(t).astimezone()
    if human:
        return moment.strftime("%Y-%m-%d %H:%M")
    return moment.isoformat(timespec="milliseconds" if ms else "seconds")


def _clock(t: float | None, start: float) -> str:
    """Time into the session as m:ss."""
    if t is None:
        return ""
    seconds = max(0, round(t - start))
    return f"{seconds // 60}:{seconds % 60:02d}"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value
