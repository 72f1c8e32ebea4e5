// Patients tab: pick one from the list or register a new one (clinic ID and age only).
import { api, formData } from "./api.js";
import { choosePatient, clear, consoleState, element, say, sayError } from "./state.js";
import { t } from "../i18n.js";

const $ = (id) => document.getElementById(id);

export function installPatients() {
  const list = $("patient-list");
  const form = $("patient-form");

  async function refresh() {
    const data = await api("GET", "/api/patients");
    const bands = form.elements.age_band;
    if (bands.options.length <= 1) {
      for (const band of data.age_bands) bands.appendChild(element("option", { value: band }, band));
    }
    clear(list);
    for (const patient of data.patients) {
      const button = element("button", { type: "button", class: "pick" }, patient.clinic_id);
      if (consoleState.patient && consoleState.patient.clinic_id === patient.clinic_id) {
        button.classList.add("chosen");
      }
      button.addEventListener("click", () => {
        choosePatient(patient);
        refresh().catch(sayError);
      });
      const item = element("li");
      item.appendChild(button);
      if (patient.limb_notes) item.appendChild(element("span", { class: "hint" }, patient.limb_notes));
      list.appendChild(item);
    }
    if (!data.patients.length) list.appendChild(element("li", { class: "hint" }, t("patients.none")));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const patient = await api("POST", "/api/patients", formData(form));
      form.reset();
      choosePatient(patient);
      say(t("patients.saved", { clinic_id: patient.clinic_id }));
      await refresh();
    } catch (error) {
      sayError(error);
    }
  });

  return refresh;
}
