// The "Model and parameters" form: read it into request params, and fill it from a saved conversation.

// Stop sequences are typed comma-separated, with \n, \t and \\ escapes.
export function encodeStops(stops) {
  return (stops || []).map((s) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t")).join(", ");
}

export function parseStops(text) {
  return text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map((s) => s.replace(/\\(n|t|\\)/g, (_, c) => (c === "n" ? "\n" : c === "t" ? "\t" : "\\")))
    .slice(0, 4);
}

function numberOrNull(input) {
  if (input.value.trim() === "") return null;
  const value = Number(input.value);
  return Number.isFinite(value) ? value : null;
}

/** The sampling parameters as the API names them; empty fields are left out (server defaults). */
export function readParams(els) {
  const out = {};
  const temperature = numberOrNull(els.temperature);
  const topP = numberOrNull(els.topP);
  const maxTokens = numberOrNull(els.maxTokens);
  if (temperature !== null) out.temperature = temperature;
  if (topP !== null) out.top_p = topP;
  if (maxTokens !== null) out.max_tokens = Math.round(maxTokens);
  const stops = parseStops(els.stop.value);
  if (stops.length) out.stop = stops;
  return out;
}

/** Put a saved conversation's model, system prompt and params back into the form. */
export function fillSettings(els, conversation) {
  const p = conversation.params || {};
  if (conversation.model && Array.from(els.model.options).some((o) => o.value === conversation.model)) {
    els.model.value = conversation.model;
  }
  els.system.value = conversation.system || "";
  if (p.temperature !== undefined) els.temperature.value = p.temperature;
  if (p.top_p !== undefined) els.topP.value = p.top_p;
  if (p.max_tokens !== undefined) els.maxTokens.value = p.max_tokens;
  els.stop.value = encodeStops(p.stop);
}

/** Call `onChange` whenever a setting changes; the form itself never submits. */
export function bindSettings(els, onChange) {
  els.settings.addEventListener("input", onChange);
  els.settings.addEventListener("change", onChange);
  els.settings.addEventListener("submit", (event) => event.preventDefault());
}
