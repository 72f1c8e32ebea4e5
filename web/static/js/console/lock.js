// The PIN pad: first-run PIN setting, unlocking with the clinician's name, idle auto-lock.
import { api } from "./api.js";
import { t } from "../i18n.js";

const $ = (id) => document.getElementById(id);

export function installLock(onUnlocked) {
  const lock = $("lock");
  const form = $("pin-form");
  const entry = $("pin-entry");
  const repeat = $("pin-repeat");
  let firstRun = false;
  let idleTimer = null;
  let idleMs = 300000;

  function activeField() {
    const second = firstRun && repeat.dataset.active === "1";
    entry.classList.toggle("active", !second);
    repeat.classList.toggle("active", second);
    return second ? repeat : entry;
  }

  function show(view) {
    firstRun = !view.pin_set;
    idleMs = (view.idle_lock_s || 300) * 1000;
    lock.hidden = false;
    $("console").hidden = true;
    entry.value = "";
    repeat.value = "";
    repeat.hidden = !firstRun;
    repeat.dataset.active = "0";
    activeField();
    $("lock-title").textContent = firstRun ? t("lock.first_run_title") : t("lock.title");
    $("lock-help").textContent = firstRun ? t("lock.first_run_help") : t("lock.help");
    $("lock-error").textContent = view.retry_in_s > 0 ? t("lock.wait", { seconds: view.retry_in_s }) : "";
  }

  function hide(view) {
    lock.hidden = true;
    $("console").hidden = false;
    idleMs = (view.idle_lock_s || 300) * 1000;
    armIdle();
    onUnlocked(view);
  }

  function armIdle() {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(lockNow, idleMs);
  }

  async function lockNow() {
    try {
      show(await api("POST", "/api/console/lock"));
    } catch (error) {
      show({ pin_set: true });
    }
  }

  for (const key of document.querySelectorAll(".pin-key[data-digit]")) {
    key.addEventListener("click", () => {
      const field = activeField();
      if (key.dataset.digit === "clear") {
        entry.value = "";
        repeat.value = "";
        repeat.dataset.active = "0";
      } else if (field.value.length < 8) {
        field.value += key.dataset.digit;
      }
    });
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const clinician = $("clinician-name").value.trim();
    if (firstRun && repeat.dataset.active !== "1") {
      // First the PIN, then the same PIN again on the same pad.
      if (entry.value.length < 4) {
        $("lock-error").textContent = t("lock.pin_format");
        return;
      }
      repeat.dataset.active = "1";
      activeField();
      $("lock-help").textContent = t("lock.repeat_help");
      return;
    }
    if (firstRun && entry.value !== repeat.value) {
      $("lock-error").textContent = t("lock.mismatch");
      repeat.value = "";
      return;
    }
    try {
      const path = firstRun ? "/api/console/pin" : "/api/console/unlock";
      const view = await api("POST", path, { pin: entry.value, clinician });
      $("lock-error").textContent = "";
      hide(view);
    } catch (error) {
      entry.value = "";
      repeat.value = "";
      repeat.dataset.active = "0";
      $("lock-error").textContent = error.message;
    }
  });

  $("lock-button").addEventListener("click", lockNow);
  window.addEventListener("bfr:locked", async () => show(await api("GET", "/api/console")));
  for (const type of ["pointerdown", "keydown"]) {
    document.addEventListener(type, () => {
      if (lock.hidden) armIdle();
    });
  }

  return async function start() {
    const view = await api("GET", "/api/console");
    if (view.unlocked) hide(view);
    else show(view);
  };
}
