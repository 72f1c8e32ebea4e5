// The live pressure chart (uPlot): the last minute of cuff pressure and its target.
/* global uPlot */
import { on } from "../link.js";
import { t } from "../i18n.js";

const WINDOW_S = 60;
const REDRAW_MS = 200;

export function installChart(container) {
  const times = [];
  const pressure = [];
  const target = [];
  let plot = null;

  function size() {
    return { width: Math.max(300, container.clientWidth || 600), height: 240 };
  }

  function create() {
    const options = {
      ...size(),
      legend: { show: true },
      scales: { x: { time: false }, y: { range: (u, lo, hi) => [0, Math.max(100, Math.ceil((hi || 0) / 50) * 50)] } },
      axes: [
        { stroke: "#ddd", grid: { stroke: "#333" }, label: t("unit.seconds") },
        { stroke: "#ddd", grid: { stroke: "#333" }, label: t("unit.mmhg") },
      ],
      series: [
        {},
        { label: t("gauge.title"), stroke: "#4fc3f7", width: 2 },
        { label: t("gauge.target"), stroke: "#ffb74d", width: 1, dash: [6, 4] },
      ],
    };
    plot = new uPlot(options, [times, pressure, target], container);
  }

  on("pressure", (p) => {
    if (typeof p.t !== "number") return;
    times.push(p.t);
    pressure.push(p.mmHg);
    target.push(p.target_mmHg);
    while (times.length && times[0] < p.t - WINDOW_S) {
      times.shift();
      pressure.shift();
      target.shift();
    }
  });

  setInterval(() => {
    if (container.offsetParent === null) return; // tab not shown: no drawing
    if (!plot) create();
    plot.setData([times, pressure, target]);
  }, REDRAW_MS);

  window.addEventListener("resize", () => plot && plot.setSize(size()));
}
