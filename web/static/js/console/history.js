// History tab: past sessions of the patient with the pressure plot, sets and alarms; exports.
import { api, formData } from "./api.js";
import { clear, consoleState, element, onPatient, say, sayError, when } from "./state.js";
import { t } from "../i18n.js";

const $ = (id) => document.getElementById(id);

export function installHistory() {
  async function refresh() {
    const list = $("session-list");
    clear(list);
    $("session-detail").hidden = true;
    if (!consoleState.patient) return;
    const data = await api("GET", `/api/sessions?clinic_id=${encodeURIComponent(consoleState.patient.clinic_id)}`);
    for (const s of data.sessions) {
      const label = `${when(s.started_at)} \u00b7 ${s.protocol_name} \u00b7 ${s.outcome || t("phase.set")}`;
      const button = element("button", { type: "button", class: "pick", dataset: { session: s.id } }, label);
      button.addEventListener("click", () => show(s.id).catch(sayError));
      const item = element("li");
      item.appendChild(button);
      list.appendChild(item);
    }
    if (!data.sessions.length) list.appendChild(element("li", { class: "hint" }, t("history.none")));
  }

  async function show(id) {
    const data = await api("GET", `/api/sessions/${id}`);
    const s = data.session;
    $("session-detail").hidden = false;
    $("session-title").textContent = t("history.session_title", { id: s.id, protocol: s.protocol_name, outcome: s.outcome || "" });
    $("session-plot").src = `/api/sessions/${id}/plot.svg?ts=${Date.now()}`;
    const rows = $("set-rows");
    clear(rows);
    for (const set of data.sets) {
      const tr = element("tr");
      const reps = set.reps_target == null ? `${Math.round(set.duration_s || 0)} s` : `${set.reps_done}/${set.reps_target}`;
      for (const cell of [set.exercise, set.set_index + 1, reps, set.rpe ?? "-", set.pain ?? "-"]) {
        tr.appendChild(element("td", {}, String(cell)));
      }
      rows.appendChild(tr);
    }
    const alarms = $("session-alarms");
    clear(alarms);
    for (const alarm of data.summary.alarms || []) {
      alarms.appendChild(element("li", {}, `${when(alarm.at)} ${alarm.code}: ${alarm.message}`));
    }
  }

  $("export-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const fields = formData(event.target);
    const body = {};
    if (fields.since) body.since = fields.since;
    if (!fields.all && consoleState.patient) body.clinic_id = consoleState.patient.clinic_id;
    try {
      const result = await api("POST", "/api/exports", body);
      const files = $("export-files");
      clear(files);
      for (const name of result.files) {
        const item = element("li");
        item.appendChild(element("a", { href: `/api/exports/${result.id}/${name}`, target: "_blank" }, name));
        files.appendChild(item);
      }
      say(t("export.done", { sessions: result.sessions }));
    } catch (error) {
      sayError(error);
    }
  });

  onPatient(() => refresh().catch(sayError));
  return refresh;
}
