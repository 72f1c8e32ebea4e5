// The pressure gauge and the top bar's reading, fed by `pressure` events.
import { on } from "./link.js";
import { t } from "./i18n.js";

const SCALE_MAX = 300; // the controller's absolute cap
const pct = (mmHg) => Math.max(0, Math.min(100, (100 * mmHg) / SCALE_MAX));

export function installGauge() {
  const top = document.getElementById("top-pressure");
  const value = document.getElementById("gauge-value");
  const band = document.getElementById("gauge-band");
  const number = document.getElementById("gauge-number");
  const target = document.getElementById("gauge-target");
  const stateBox = document.getElementById("top-state");
  let latest = null;
  let drawn = false;

  on("pressure", (p) => {
    latest = p;
    if (!drawn) {
      drawn = true;
      requestAnimationFrame(draw);
    }
  });

  // Drawing once per frame, whatever the event rate, keeps a slow screen responsive.
  function draw() {
    drawn = false;
    const p = latest;
    const mmHg = p.mmHg == null ? null : Math.max(0, p.mmHg);
    const text = mmHg == null ? "--" : String(Math.round(mmHg));
    if (top) top.textContent = text;
    if (number) number.textContent = text;
    if (value) value.setAttribute("stroke-dasharray", `${pct(mmHg || 0)} 100`);
    if (band) {
      if (p.target_mmHg) {
        const lo = pct(p.target_mmHg * 0.9);
        const hi = pct(p.target_mmHg * 1.1);
        band.setAttribute("stroke-dasharray", `0 ${lo} ${hi - lo} 100`);
      } else {
        band.setAttribute("stroke-dasharray", "0 100");
      }
    }
    if (target) target.textContent = p.target_mmHg ? `${Math.round(p.target_mmHg)} ${t("unit.mmhg")}` : "--";
    if (stateBox && stateBox.dataset.state !== p.state) {
      stateBox.dataset.state = p.state || "";
      stateBox.textContent = t(`state.${p.state || "unknown"}`);
    }
  }
}
