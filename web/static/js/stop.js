// The STOP button in the top bar of every screen: deflates at the first touch.
import { sendStop } from "./link.js";

const DEBOUNCE_MS = 400; // a touch fires pointerdown and then click: one STOP, not two

export function installStop() {
  const button = document.getElementById("stop-button");
  const flash = document.getElementById("stop-flash");
  let last = 0;

  function stop(event) {
    if (event) event.preventDefault();
    const now = Date.now();
    if (now - last < DEBOUNCE_MS) return;
    last = now;
    sendStop();
    flash.hidden = false;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => (flash.hidden = true), 4000);
  }

  // pointerdown rather than click: no waiting for the finger to lift.
  button.addEventListener("pointerdown", stop);
  button.addEventListener("click", stop);
}
