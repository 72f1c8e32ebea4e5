// JSON requests to /api/ with the console's cookie; a 401 "locked" reply shows the PIN pad.

export class ApiFailure extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  let data = null;
  try {
    data = await response.json();
  } catch (error) {
    data = null;
  }
  if (response.status === 401 && data && data.locked) {
    window.dispatchEvent(new CustomEvent("bfr:locked"));
  }
  if (!response.ok) throw new ApiFailure((data && data.error) || response.statusText, response.status);
  return data;
}

// The fields of a form as an object: numbers for number inputs, empty fields left out.
export function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled || el.type === "submit" || el.type === "button") continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else if (el.value === "") continue;
    else if (el.type === "number") out[el.name] = Number(el.value);
    else out[el.name] = el.value;
  }
  return out;
}
