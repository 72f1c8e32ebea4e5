// Screening tab: the contraindication form, its outcome, confirm a caution or override a block.
import { api, formData } from "./api.js";
import { clear, consoleState, element, needPatient, onPatient, say, sayError } from "./state.js";
import { has, t } from "../i18n.js";

const $ = (id) => document.getElementById(id);

export function installScreening() {
  const form = $("screening-form");
  const list = $("screening-questions");
  let questions = [];
  let previous = null;
  let current = null;

  function renderQuestions() {
    clear(list);
    for (const q of questions) {
      const item = element("li", { class: "question", dataset: { id: q.id } });
      item.appendChild(element("span", { class: "question-text" }, has(q.text_key) ? t(q.text_key) : q.text));
      const answers = element("span", { class: "yes-no" });
      for (const [value, label] of [["yes", t("answer.yes")], ["no", t("answer.no")]]) {
        const wrap = element("label", { class: "choice" });
        const input = element("input", { type: "radio", name: `q-${q.id}`, value });
        wrap.appendChild(input);
        wrap.appendChild(element("span", {}, label));
        answers.appendChild(wrap);
      }
      item.appendChild(answers);
      list.appendChild(item);
    }
  }

  function fill(answers) {
    for (const q of questions) {
      const value = answers[q.id] ? "yes" : "no";
      const input = form.querySelector(`input[name="q-${q.id}"][value="${value}"]`);
      if (input) input.checked = true;
    }
  }

  function showResult(screening) {
    current = screening;
    $("screening-result").hidden = false;
    $("screening-outcome").textContent = t(`outcome.screening.${screening.outcome}`, { score: screening.score });
    const reasons = $("screening-reasons");
    clear(reasons);
    for (const reason of screening.reasons) reasons.appendChild(element("li", {}, reason));
    $("screening-confirm").hidden = !(screening.outcome === "caution" && !screening.confirmed_by);
    $("screening-override").hidden = !(screening.outcome === "blocked" && !screening.override_by);
  }

  async function load() {
    if (!questions.length) {
      questions = (await api("GET", "/api/screening/questions")).questions;
      renderQuestions();
    }
    $("screening-result").hidden = true;
    previous = null;
    if (consoleState.patient) {
      const data = await api("GET", `/api/patients/${encodeURIComponent(consoleState.patient.clinic_id)}/screenings`);
      previous = data.previous_answers;
    }
    $("screening-prefill").disabled = !previous;
  }

  $("screening-prefill").addEventListener("click", () => previous && fill(previous));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!needPatient()) return;
    const answers = {};
    const missing = [];
    for (const q of questions) {
      const checked = form.querySelector(`input[name="q-${q.id}"]:checked`);
      if (!checked) missing.push(q.id);
      else answers[q.id] = checked.value === "yes";
    }
    if (missing.length) {
      say(t("screening.unanswered", { count: missing.length }), "error");
      form.querySelector(`li[data-id="${missing[0]}"]`).scrollIntoView({ block: "center" });
      return;
    }
    const { limb, side } = formData(form);
    try {
      const saved = await api("POST", `/api/patients/${encodeURIComponent(consoleState.patient.clinic_id)}/screenings`, { limb, side, answers });
      showResult(saved);
      say(t("screening.saved"));
    } catch (error) {
      sayError(error);
    }
  });

  $("screening-confirm").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      showResult(await api("POST", `/api/screenings/${current.id}/confirm`, formData(event.target)));
    } catch (error) {
      sayError(error);
    }
  });

  $("screening-override").addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      showResult(await api("POST", `/api/screenings/${current.id}/override`, formData(event.target)));
    } catch (error) {
      sayError(error);
    }
  });

  onPatient(() => load().catch(sayError));
  return load;
}
