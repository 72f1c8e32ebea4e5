// The alarm banner: what is wrong and what to do, sounded until silenced (30 s, never off).
import { on, sendSilence } from "./link.js";
import { has, t } from "./i18n.js";
import { alarmBurst } from "./sound.js";

const REPEAT_MS = 2500;
const SILENCE_MS = 30000;

export function installAlarms() {
  const banner = document.getElementById("alarm-banner");
  const title = document.getElementById("alarm-title");
  const message = document.getElementById("alarm-message");
  const silence = document.getElementById("silence-button");
  let view = { alarms: [], silenced: false, connected: true };
  let socketUp = true;
  let silencedUntil = 0;

  function problems() {
    const list = [];
    if (!socketUp) list.push({ code: "SCREEN_OFFLINE", text: t("alarm.screen_offline") });
    else if (!view.connected) list.push({ code: "CONTROLLER_LINK", text: t("alarm.link_down") });
    for (const alarm of view.alarms || []) {
      // A translation per code when the language has one, else the controller's own advice.
      const key = `alarm.code.${alarm.code}`;
      list.push({
        code: alarm.code,
        text: has(key) ? t(key) : alarm.message,
        priority: alarm.priority,
      });
    }
    return list;
  }

  function render() {
    const list = problems();
    banner.hidden = list.length === 0;
    document.body.classList.toggle("alarming", list.length > 0);
    if (!list.length) return;
    const newest = list[list.length - 1];
    title.textContent = `${t("alarm.title")}: ${newest.code}`;
    message.textContent = list.map((p) => p.text).join(" ");
    banner.dataset.code = newest.code;
  }

  // As the controller's buzzer: low priority (a stop someone pressed) is shown, not sounded.
  function sounding() {
    const loud = problems().filter((p) => p.priority !== "low");
    return loud.length > 0 && !view.silenced && Date.now() >= silencedUntil;
  }

  on("alarm", (data) => {
    // A second problem during a silence must be heard: a code not seen before ends it here, as
    // it does on the controller.
    const before = new Set((view.alarms || []).map((a) => a.code));
    if ((data.alarms || []).some((a) => !before.has(a.code))) silencedUntil = 0;
    view = data;
    render();
  });
  on("link", (state) => {
    socketUp = state.connected;
    render();
  });
  silence.addEventListener("click", () => {
    silencedUntil = Date.now() + SILENCE_MS;
    sendSilence();
  });
  setInterval(() => {
    if (sounding()) alarmBurst();
  }, REPEAT_MS);
}
