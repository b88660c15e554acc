// "View code": the request the playground would make, as curl and as Python with the openai SDK.

import { readParams } from "./settings.js";

function py(value) {
  return JSON.stringify(value); // JSON strings and numbers are valid Python literals
}

function shellQuote(text) {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

function codeRequest(ctx) {
  const { els, state } = ctx;
  const p = readParams(els);
  const model = els.model.value;
  const draft = els.input.value || "Hello!";
  if (state.mode === "completion") {
    return { path: "/completions", body: Object.assign({ model, prompt: draft }, p) };
  }
  const messages = [];
  if (els.system.value.trim()) messages.push({ role: "system", content: els.system.value });
  messages.push(...state.history, { role: "user", content: draft });
  return { path: "/chat/completions", body: Object.assign({ model, messages }, p, { stream: true }) };
}

export function updateCode(ctx) {
  const { els, config } = ctx;
  if (!els.codeCurl) return;
  const { path, body } = codeRequest(ctx);
  const completion = path === "/completions";
  if (completion) body.stream = true;
  els.codeCurl.textContent = [
    `curl ${config.apiBase}${path} \\`,
    `  -H "Authorization: Bearer YOUR_API_KEY" \\`,
    `  -H "Content-Type: application/json" \\`,
    `  -d ${shellQuote(JSON.stringify(body, null, 2))}`,
  ].join("\n");

  const lines = [
    "from openai import OpenAI",
    "",
    `client = OpenAI(base_url=${py(config.apiBase)}, api_key="YOUR_API_KEY")`,
    "",
    `stream = client.${completion ? "completions" : "chat.completions"}.create(`,
    `    model=${py(body.model)},`,
  ];
  if (completion) {
    lines.push(`    prompt=${py(body.prompt)},`);
  } else {
    lines.push("    messages=[");
    for (const m of body.messages) lines.push(`        {"role": ${py(m.role)}, "content": ${py(m.content)}},`);
    lines.push("    ],");
  }
  for (const key of ["temperature", "top_p", "max_tokens"]) {
    if (body[key] !== undefined) lines.push(`    ${key}=${py(body[key])},`);
  }
  if (body.stop) lines.push(`    stop=[${body.stop.map(py).join(", ")}],`);
  lines.push("    stream=True,", ")", "for chunk in stream:");
  lines.push(
    completion
      ? '    print(chunk.choices[0].text, end="", flush=True)'
      : '    print(chunk.choices[0].delta.content or "", end="", flush=True)',
  );
  els.codePython.textContent = lines.join("\n");
}
