// The "not ready to treat" card: calibration or self-test missing, failed or out of date.
// Refreshed on every tab change, so a technician's fix shows without a reload.
import { api } from "./api.js";
import { clear, element } from "./state.js";

export function installReadiness() {
  const card = document.getElementById("readiness");
  const list = document.getElementById("readiness-problems");
  return async function refresh() {
    const view = await api("GET", "/api/readiness");
    clear(list);
    for (const problem of view.problems) {
      list.appendChild(element("li", {}, `${problem.message}: ${problem.advice}`));
    }
    card.hidden = view.ready;
  };
}
