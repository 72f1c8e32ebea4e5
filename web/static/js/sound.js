// Beeps through WebAudio: the metronome and the alarm. Nothing to download, works offline.

let context = null;

function audio() {
  if (!context) {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    context = new Context();
  }
  if (context.state === "suspended") context.resume().catch(() => {});
  return context;
}

// Browsers start audio only after a touch; the kiosk also runs Chromium with an autoplay flag.
document.addEventListener("pointerdown", () => audio(), { capture: true });

export function beep(frequency, durationMs, volume = 0.25) {
  const ctx = audio();
  if (!ctx) return;
  const start = ctx.currentTime + 0.005;
  const end = start + durationMs / 1000;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = "sine";
  osc.frequency.value = frequency;
  // Short ramps: a hard edge clicks.
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(volume, start + 0.01);
  gain.gain.setValueAtTime(volume, end - 0.01);
  gain.gain.linearRampToValueAtTime(0, end);
  osc.connect(gain).connect(ctx.destination);
  osc.start(start);
  osc.stop(end + 0.02);
}

export function metronomeBeep(phase) {
  beep(phase === "up" ? 880 : 660, 90, 0.3);
}

// A high-priority alarm burst in the spirit of IEC 60601-1-8: two groups of pulses.
export function alarmBurst() {
  const ctx = audio();
  if (!ctx) return;
  const pattern = [0, 150, 300, 600, 750];
  pattern.forEach((delay) => setTimeout(() => beep(988, 110, 0.5), delay));
}
