// The transcript: one <article> per turn. User text is only ever written with textContent.

export function addTurn(ctx, role, text) {
  const { els, state } = ctx;
  if (els.empty) els.empty.hidden = true;
  const turn = document.createElement("article");
  turn.className = `pg-turn pg-${role}`;
  const who = document.createElement("h3");
  who.className = "pg-who";
  who.textContent = role === "user" ? (state.mode === "completion" ? "Prompt" : "You") : "Model";
  const body = document.createElement("div");
  body.className = "pg-body";
  body.textContent = text;
  const meta = document.createElement("p");
  meta.className = "pg-meta";
  turn.append(who, body, meta);
  els.transcript.append(turn);
  scrollToEnd(ctx);
  return { turn, body, meta };
}

export function scrollToEnd(ctx) {
  ctx.els.transcript.scrollTop = ctx.els.transcript.scrollHeight;
}

/** "Stopped · 12 tokens · 30.1 tok/s" under a reply. */
export function setMeta(meta, tokens, tokensPerS, stopped) {
  const parts = [];
  if (stopped) parts.push("Stopped");
  if (tokens !== null && tokens !== undefined) parts.push(`${tokens} token${tokens === 1 ? "" : "s"}`);
  if (tokensPerS) parts.push(`${Number(tokensPerS).toFixed(1)} tok/s`);
  meta.textContent = parts.join(" · ");
}
