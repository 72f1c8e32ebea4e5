// What the console shares between its tabs: the chosen patient and a line for messages.
import { t } from "../i18n.js";

const listeners = [];
export const consoleState = { patient: null, clinician: null };

export function choosePatient(patient) {
  consoleState.patient = patient;
  document.getElementById("current-patient").textContent = patient
    ? t("console.current_patient", { clinic_id: patient.clinic_id })
    : "";
  for (const listener of listeners) listener(patient);
}

export function onPatient(listener) {
  listeners.push(listener);
}

export function say(text, kind = "info") {
  const line = document.getElementById("console-message");
  line.textContent = text;
  line.dataset.kind = kind;
}

export function sayError(error) {
  say(error && error.message ? error.message : String(error), "error");
}

export function needPatient() {
  if (!consoleState.patient) {
    say(t("console.pick_patient_first"), "error");
    return false;
  }
  return true;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function element(tag, attrs = {}, text = null) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value);
  }
  if (text != null) el.textContent = text;
  return el;
}

export function when(epochSeconds) {
  if (epochSeconds == null) return "";
  return new Date(epochSeconds * 1000).toLocaleString();
}
