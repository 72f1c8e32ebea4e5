// Device tab: the controller's status, reset after a stop, empty the cuff, change the PIN.
import { api, formData } from "./api.js";
import { clear, element, say, sayError } from "./state.js";
import { on } from "../link.js";
import { t } from "../i18n.js";

const $ = (id) => document.getElementById(id);
const SHOWN = ["state", "fault", "mmHg", "target_mmHg", "occlusion_s", "occlusion_limit_s", "reperfusion_lockout_s", "limb", "lop_mmHg", "max_target_mmHg", "connected", "ui"];

export function installDevice() {
  on("status", (status) => {
    const list = $("device-status");
    if (list.offsetParent === null) return;
    clear(list);
    for (const key of SHOWN) {
      list.appendChild(element("dt", {}, key));
      list.appendChild(element("dd", {}, status[key] == null ? "-" : String(status[key])));
    }
  });

  async function command(path) {
    try {
      await api("POST", path);
      say(t("device.done"));
    } catch (error) {
      sayError(error);
    }
  }
  $("device-reset").addEventListener("click", () => command("/api/controller/reset"));
  $("device-deflate").addEventListener("click", () => command("/api/controller/deflate"));

  $("pin-change").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await api("POST", "/api/console/pin", formData(event.target));
      event.target.reset();
      say(t("device.pin_changed"));
    } catch (error) {
      sayError(error);
    }
  });
}
