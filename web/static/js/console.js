// The clinician's console: PIN lock, then tabs for patients, screening, LOP, session, history.
import { installCommon } from "./common.js";
import { installChart } from "./console/chart.js";
import { installDevice } from "./console/device.js";
import { installHistory } from "./console/history.js";
import { installLock } from "./console/lock.js";
import { installLop } from "./console/lop.js";
import { installPatients } from "./console/patients.js";
import { installReadiness } from "./console/readiness.js";
import { installScreening } from "./console/screening.js";
import { installSession } from "./console/session.js";
import { say, sayError } from "./console/state.js";

installCommon();

const loaders = {
  patients: installPatients(),
  screening: installScreening(),
  lop: installLop(),
  session: installSession(),
  history: installHistory(),
};
installDevice();
const refreshReadiness = installReadiness();
installChart(document.getElementById("live-chart"));

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.hidden = tab.id !== `tab-${name}`;
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-selected", String(button.dataset.tab === name));
  }
  say(""); // the last tab's message would read as this tab's
  refreshReadiness().catch(sayError);
  if (loaders[name]) loaders[name]().catch(sayError);
}

for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => showTab(button.dataset.tab));
}

const start = installLock(() => showTab("patients"));
start().catch(sayError);
