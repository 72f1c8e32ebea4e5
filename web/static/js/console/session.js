// Session tab: plan a session (protocol, limb, % LOP), start it, and steer the running one.
import { api, formData } from "./api.js";
import { clear, consoleState, element, needPatient, say, sayError } from "./state.js";
import { on } from "../link.js";
import { formatClock, t, wordParams } from "../i18n.js";

const $ = (id) => document.getElementById(id);

// Inputs an action needs before it can be sent.
const ACTION_INPUTS = {
  enter_lop: [["first_mmhg", "number", "session.lop_value"]],
  override_screening: [["reason", "text", "session.reason"]],
  confirm_caution: [["note", "text", "session.reason"]],
  rate: [
    ["rpe", "number", "rating.rpe_short"],
    ["pain", "number", "rating.pain_short"],
  ],
};
// Details a clinician needs next to the patient's wording of the prompt.
const DETAIL_PARAMS = ["problem", "reason", "first_mmhg", "second_mmhg", "spread_mmhg", "message", "code"];

export function installSession() {
  const form = $("session-form");
  const select = $("protocol-select");
  let protocols = [];
  let pctInfo = null;
  let lastActions = "";

  function chosen() {
    return protocols.find((p) => p.name === select.value);
  }

  function updatePlan() {
    const protocol = chosen();
    if (!protocol || !pctInfo) return;
    const limb = form.elements.limb.value;
    const minutes = Math.round(protocol.planned_s / 60);
    const warnings = protocol.warnings.length ? ` (${protocol.warnings.join("; ")})` : "";
    $("protocol-description").textContent = `${protocol.description || ""} ${t("session.planned", { minutes })}${warnings}`;
    if (protocol.pct_lop[limb] != null) form.elements.pct_lop.value = protocol.pct_lop[limb];
    const [low, high] = pctInfo.typical[limb];
    $("pct-hint").textContent = t("session.pct_hint", { limb: t(`limb.${limb}`), low, high });
    updateReason();
  }

  function updateReason() {
    $("above-80").hidden = !(Number(form.elements.pct_lop.value) > pctInfo.needs_reason_above);
  }

  async function load() {
    const data = await api("GET", "/api/protocols");
    protocols = data.protocols;
    pctInfo = data.pct_lop;
    const keep = select.value;
    clear(select);
    for (const p of protocols) select.appendChild(element("option", { value: p.name }, p.title));
    if (keep) select.value = keep;
    updatePlan();
  }

  select.addEventListener("change", updatePlan);
  form.elements.limb.addEventListener("change", updatePlan);
  form.elements.pct_lop.addEventListener("input", updateReason);

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!needPatient()) return;
    const fields = formData(form);
    if ($("above-80").hidden) delete fields.above_80_reason;
    try {
      await api("POST", "/api/sessions", { clinic_id: consoleState.patient.clinic_id, ...fields });
      say(t("session.started"));
    } catch (error) {
      sayError(error);
    }
  });

  async function act(action, body) {
    try {
      await api("POST", `/api/session/actions/${action}`, body);
    } catch (error) {
      sayError(error);
    }
  }

  function actionControl(action) {
    const inputs = ACTION_INPUTS[action];
    if (!inputs) {
      const button = element("button", { type: "button", dataset: { action } }, t(`action.${action}`));
      button.addEventListener("click", () => act(action, {}));
      return button;
    }
    const box = element("form", { class: "inline-action", dataset: { action } });
    for (const [name, type, label] of inputs) {
      const field = element("input", { name, type, required: "", "aria-label": t(label), placeholder: t(label) });
      if (type === "number") field.setAttribute("min", "0");
      box.appendChild(field);
    }
    box.appendChild(element("button", { type: "submit" }, t(`action.${action}`)));
    box.addEventListener("submit", (event) => {
      event.preventDefault();
      act(action, formData(box));
    });
    return box;
  }

  function render(view) {
    const live = $("session-live");
    live.hidden = !view.active;
    form.hidden = !!view.active && view.phase !== "finished";
    if (!view.active) return;
    $("session-phase").textContent = t(`phase.${view.phase}`);
    const params = view.prompt_params || {};
    const details = DETAIL_PARAMS.filter((k) => params[k] != null && params[k] !== "").map((k) => `${k}: ${params[k]}`);
    const prompt = view.prompt_key ? t(`prompt.${view.prompt_key}`, wordParams(params)) : "";
    $("session-prompt").textContent = details.length ? `${prompt} (${details.join("; ")})` : prompt;
    $("session-countdown").textContent = view.countdown_s != null ? formatClock(view.countdown_s) : "";
    const actions = (view.actions || []).filter((a) => a !== "abort");
    if (view.phase === "finished") actions.push("dismiss");
    $("session-abort").hidden = !(view.actions || []).includes("abort");
    // Rebuild the buttons only when the set changes, so a half-typed value survives updates.
    const key = actions.join(",");
    if (key !== lastActions) {
      lastActions = key;
      const box = $("session-actions");
      clear(box);
      for (const action of actions) box.appendChild(actionControl(action));
    }
  }

  $("session-abort").addEventListener("submit", (event) => {
    event.preventDefault();
    act("abort", formData(event.target));
  });

  on("session", render);
  return load;
}
