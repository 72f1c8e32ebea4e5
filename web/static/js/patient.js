// The patient's screen: one instruction at a time, driven by the session runner's `session` view.
import { installCommon } from "./common.js";
import { on, sendSessionInput } from "./link.js";
import { formatClock, t, wordParams } from "./i18n.js";
import { metronomeBeep } from "./sound.js";

installCommon();

const $ = (id) => document.getElementById(id);
const views = { idle: $("view-idle"), session: $("view-session") };
const widgets = {
  picture: $("widget-picture"),
  reps: $("widget-reps"),
  countdown: $("widget-countdown"),
  rating: $("widget-rating"),
};
const COUNTDOWN_PHASES = ["rest", "lop_rest", "reperfusion"];

let view = { active: false };
let countdown = { total: 0, remaining: 0, at: 0, phase: null };
let ratingTouched = { rpe: false, pain: false };
let awaitingRating = false;

function showOnly(name) {
  for (const [key, el] of Object.entries(widgets)) el.hidden = key !== name;
}

function stepLabel(v) {
  if (v.exercise == null || v.set_index == null || v.phase === "finished") return "";
  // While a set waits for its rating the runner already points at the next one.
  const rated = v.prompt_key === "rate_set" && v.prompt_params && v.prompt_params.set_number;
  return t("step.set", {
    exercise: v.exercise_title || v.exercise,
    set_number: rated || v.set_index + 1,
    sets: v.sets_total,
  });
}

function render() {
  const v = view;
  views.idle.hidden = !!v.active;
  views.session.hidden = !v.active;
  document.body.dataset.phase = v.active ? v.phase : "idle";
  if (!v.active) {
    awaitingRating = false;
    return;
  }

  $("prompt-text").textContent = v.prompt_key ? t(`prompt.${v.prompt_key}`, wordParams(v.prompt_params)) : "";
  $("step-label").textContent = stepLabel(v);
  $("confirm-cuff").hidden = !(v.actions || []).includes("confirm_cuff");
  const summary = v.phase === "finished" ? v.summary : null;
  $("session-summary").hidden = !(summary && summary.session_id);
  if (summary && summary.session_id) {
    $("session-summary").textContent = t("patient.summary", {
      sets_done: summary.sets_done,
      sets_planned: summary.sets_planned,
      minutes: Math.max(1, Math.round((summary.duration_s || 0) / 60)),
    });
  }

  if (v.phase === "cuff_placement" && v.picture) {
    showPicture(v.picture.limb, v.picture.side);
    showOnly("picture");
  } else if (v.phase === "finished") {
    showOnly(null);
  } else if (v.awaiting_rating) {
    if (!awaitingRating) startRating();
    showOnly("rating");
  } else if (v.phase === "set" && v.reps_target) {
    showOnly("reps");
    $("rep-target").textContent = v.reps_target;
    $("rep-count").textContent = v.reps_done ?? 0;
    if (v.rep == null && v.countdown_s) {
      $("metronome").dataset.phase = "lead_in";
      $("metronome-word").textContent = Math.ceil(v.countdown_s);
    }
  } else if ((COUNTDOWN_PHASES.includes(v.phase) || v.phase === "set") && v.countdown_s != null) {
    showOnly("countdown");
  } else {
    showOnly(null);
  }
  awaitingRating = !!v.awaiting_rating;
  trackCountdown(v);
}

function showPicture(limb, side) {
  const wanted = `${limb}-${side}`;
  for (const el of document.querySelectorAll(".cuff-figure [data-cuff]")) {
    el.classList.toggle("active", el.dataset.cuff === wanted);
  }
  // SVG elements have no `hidden` property: toggle the attribute itself.
  for (const el of document.querySelectorAll(".cuff-closeup")) {
    el.toggleAttribute("hidden", el.dataset.limb !== limb);
  }
}

function trackCountdown(v) {
  if (v.countdown_s == null) {
    countdown.phase = null;
    return;
  }
  const key = `${v.phase}:${v.exercise_index}:${v.set_index}`;
  if (countdown.phase !== key || v.countdown_s > countdown.total) {
    countdown.total = Math.max(v.countdown_s, 1);
    countdown.phase = key;
  }
  countdown.remaining = v.countdown_s;
  countdown.at = performance.now();
}

// The ring runs on the page's own clock between updates, so it moves smoothly.
function animate() {
  if (!widgets.countdown.hidden && countdown.phase) {
    const left = Math.max(0, countdown.remaining - (performance.now() - countdown.at) / 1000);
    $("countdown-seconds").textContent = Math.ceil(left);
    $("ring-value").setAttribute("stroke-dasharray", `${(100 * left) / countdown.total} 100`);
  }
  requestAnimationFrame(animate);
}
requestAnimationFrame(animate);

// Each rating starts blank: both sliders must be moved, so no value is given by default.
function startRating() {
  ratingTouched = { rpe: false, pain: false };
  for (const name of ["rpe", "pain"]) {
    $(name).value = 0;
    $(`${name}-value`).textContent = "-";
  }
  $("pain-warning").hidden = true;
  $("rating-save").disabled = true;
}

for (const name of ["rpe", "pain"]) {
  $(name).addEventListener("input", () => {
    ratingTouched[name] = true;
    $(`${name}-value`).textContent = $(name).value;
    $("pain-warning").hidden = Number($("pain").value) <= 7 || !ratingTouched.pain;
    $("rating-save").disabled = !(ratingTouched.rpe && ratingTouched.pain);
  });
}

$("widget-rating").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("rating-save").disabled = true;
  const reply = await sendSessionInput({
    action: "rate_set",
    rpe: Number($("rpe").value),
    pain: Number($("pain").value),
  });
  if (!reply || !reply.ok) $("rating-save").disabled = false;
});

$("confirm-cuff").addEventListener("click", () => sendSessionInput({ action: "confirm_cuff" }));

on("session", (data) => {
  view = data || { active: false };
  render();
});

on("beat", (beat) => {
  const metronome = $("metronome");
  metronome.dataset.phase = beat.phase;
  $("metronome-word").textContent = t(`reps.${beat.phase}`);
  if (beat.reps_done != null) $("rep-count").textContent = beat.reps_done;
  // Restart the CSS pulse on every beat.
  metronome.classList.remove("pulse");
  void metronome.offsetWidth;
  metronome.classList.add("pulse");
  metronomeBeep(beat.phase);
});

on("status", (status) => {
  // A measurement the clinician started outside a session still needs the patient still.
  $("idle-measuring").hidden = !(status && status.state === "MEASURING_LOP");
  const line = $("occlusion-line");
  // The controller keeps counting occlusion until reperfusion: show it only while inflated.
  const inflated = status && status.occlusion_s > 0 && ["INFLATING", "HOLDING"].includes(status.state);
  line.hidden = !inflated;
  if (inflated) $("occlusion-time").textContent = formatClock(status.occlusion_s);
});
