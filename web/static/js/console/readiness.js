// The "not ready to treat" card: calibration or self-test missing, failed or out of date.
// Refreshed on every tab change and every few seconds while the console is unlocked, so a
// technician's fix, or a self-test that just failed, shows without a reload or a tab change.
import { api } from "./api.js";
import { clear, element } from "./state.js";

const REFRESH_MS = 10000;

export function installReadiness() {
  const card = document.getElementById("readiness");
  const list = document.getElementById("readiness-problems");
  const lock = document.getElementById("lock");
  async function refresh() {
    const view = await api("GET", "/api/readiness");
    clear(list);
    for (const problem of view.problems) {
      list.appendChild(element("li", {}, `${problem.message}: ${problem.advice}`));
    }
    card.hidden = view.ready;
  }
  // Quietly: a missed refresh must not replace what the open tab is telling the clinician,
  // and the next one (or the next tab change, which reports errors) catches up.
  setInterval(() => {
    if (lock.hidden && document.visibilityState === "visible") refresh().catch(() => {});
  }, REFRESH_MS);
  return refresh;
}
