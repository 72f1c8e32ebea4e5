// LOP tab: measure through the controller, or type a Doppler/manual value; the history by posture.
import { api, formData } from "./api.js";
import { clear, consoleState, element, needPatient, onPatient, say, sayError, when } from "./state.js";
import { on } from "../link.js";
import { t } from "../i18n.js";

const $ = (id) => document.getElementById(id);

export function installLop() {
  const form = $("lop-form");
  const live = $("lop-live");
  let measuring = false;
  let lastSeen = null;

  async function refresh() {
    const rows = $("lop-history");
    clear(rows);
    if (!consoleState.patient) return;
    const data = await api("GET", `/api/patients/${encodeURIComponent(consoleState.patient.clinic_id)}/lop`);
    for (const m of data.lop.slice().reverse()) {
      const tr = element("tr");
      const readings = m.second_mmhg == null ? `${m.first_mmhg}` : `${m.first_mmhg} / ${m.second_mmhg}`;
      const cells = [
        when(m.at),
        `${t(`limb.${m.limb}`)} ${t(`side.${m.side}`)}`,
        t(`posture.${m.posture}`),
        m.cuff,
        `${m.lop_mmhg} ${t("unit.mmhg")}${m.spread_flag ? " \u26a0" : ""}`,
        readings,
        t(`method.${m.method}`),
      ];
      for (const cell of cells) tr.appendChild(element("td", {}, cell));
      rows.appendChild(tr);
    }
  }

  $("lop-measure").addEventListener("click", async () => {
    if (!needPatient()) return;
    const fields = formData(form);
    // Waiting starts before the request: the measurement's end (a STOP a moment later, say)
    // can reach this page on the status stream before the request's own reply does.
    measuring = true;
    try {
      await api("POST", "/api/lop/measure", {
        clinic_id: consoleState.patient.clinic_id,
        limb: fields.limb,
        side: fields.side,
        posture: fields.posture,
        cuff: fields.cuff,
      });
      if (measuring) live.textContent = t("lop.measuring");
    } catch (error) {
      measuring = false;
      sayError(error);
    }
  });

  // A finished measurement shows up as a new `last_lop` in the controller status.
  on("status", (status) => {
    const result = status.last_lop;
    const key = JSON.stringify(result);
    if (lastSeen === null) lastSeen = key;
    if (status.state === "MEASURING_LOP") live.textContent = t("lop.measuring");
    if (!measuring || key === lastSeen || !result) return;
    lastSeen = key;
    measuring = false;
    if (result.lop_mmHg == null) {
      live.textContent = t("lop.failed", { reason: result.reason || "" });
      return;
    }
    const value = Math.round(result.lop_mmHg);
    const readings = (result.readings || []).filter((r) => r.lop_mmHg != null);
    if (readings.length >= 2) {
      // The controller measured twice: both readings go in, the record computes the spread.
      form.elements.first_mmhg.value = Math.round(readings[0].lop_mmHg);
      form.elements.second_mmhg.value = Math.round(readings[1].lop_mmHg);
    } else {
      const target = form.elements.first_mmhg.value === "" ? form.elements.first_mmhg : form.elements.second_mmhg;
      target.value = value;
    }
    form.elements.method.value = "oscillometric";
    live.textContent = t("lop.result", { lop: value });
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!needPatient()) return;
    try {
      const saved = await api("POST", `/api/patients/${encodeURIComponent(consoleState.patient.clinic_id)}/lop`, formData(form));
      say(t("lop.saved", { lop: saved.lop_mmhg }));
      form.elements.first_mmhg.value = "";
      form.elements.second_mmhg.value = "";
      await refresh();
    } catch (error) {
      sayError(error);
    }
  });

  onPatient(() => refresh().catch(sayError));
  return refresh;
}
