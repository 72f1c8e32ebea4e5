// Texts come from the page's embedded catalogue (web/i18n/<language>.json over English).
const catalogue = JSON.parse(document.getElementById("catalogue").textContent);

// Values that arrive as codes (limb "arm", posture "seated") are shown in the page's language.
const WORD_PARAMS = ["limb", "side", "posture", "outcome"];

function show(value) {
  if (typeof value === "number") return String(Math.round(value));
  return value == null ? "" : String(value);
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(catalogue, key);
}

export function t(key, params = {}) {
  const template = has(key) ? catalogue[key] : key;
  return template.replace(/\{([a-z_]+)\}/g, (match, name) =>
    Object.prototype.hasOwnProperty.call(params, name) ? show(params[name]) : match,
  );
}

// Prompt parameters with code values translated ("left" -> the language's word for left).
export function wordParams(params = {}) {
  const out = { ...params };
  for (const name of WORD_PARAMS) {
    const key = `param.${name}.${out[name]}`;
    if (out[name] != null && has(key)) out[name] = catalogue[key];
  }
  return out;
}

export function formatClock(seconds) {
  const s = Math.max(0, Math.round(seconds || 0));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
