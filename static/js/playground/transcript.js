// The transcript: one <article> per turn. User text is only ever written with textContent.

import { gettext, interpolate, ngettext } from "../i18n.js";

export function addTurn(ctx, role, text) {
  const { els, state } = ctx;
  if (els.empty) els.empty.hidden = true;
  const turn = document.createElement("article");
  turn.className = `pg-turn pg-${role}`;
  const who = document.createElement("h3");
  who.className = "pg-who";
  who.textContent =
    role === "user" ? (state.mode === "completion" ? gettext("Prompt") : gettext("You")) : gettext("Model");
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

/** The passages a grounded answer was made from, under the reply (text only, via textContent). */
export function showCitations(reply, event) {
  const section = document.createElement("details");
  section.className = "pg-citations";
  section.open = true;
  const summary = document.createElement("summary");
  summary.textContent = event.found
    ? `Sources: ${event.citations.length} passage${event.citations.length === 1 ? "" : "s"} from the knowledge base`
    : "No relevant passage was found in the knowledge base.";
  section.append(summary);
  const list = document.createElement("ol");
  for (const citation of event.citations) {
    const item = document.createElement("li");
    const source = document.createElement("p");
    source.className = "pg-muted";
    source.textContent = `${citation.document}, passage ${citation.chunk_index + 1} (score ${citation.score.toFixed(2)})`;
    const quote = document.createElement("blockquote");
    quote.textContent = citation.text;
    item.append(source, quote);
    list.append(item);
  }
  if (event.citations.length) section.append(list);
  reply.turn.insertBefore(section, reply.meta);
}

export function scrollToEnd(ctx) {
  ctx.els.transcript.scrollTop = ctx.els.transcript.scrollHeight;
}

/** "Stopped · 12 tokens · 30.1 tok/s" under a reply. */
export function setMeta(meta, tokens, tokensPerS, stopped) {
  const parts = [];
  if (stopped) parts.push(gettext("Stopped"));
  if (tokens !== null && tokens !== undefined) {
    parts.push(interpolate(ngettext("%(count)s token", "%(count)s tokens", tokens), { count: tokens }));
  }
  if (tokensPerS) parts.push(interpolate(gettext("%(speed)s tok/s"), { speed: Number(tokensPerS).toFixed(1) }));
  meta.textContent = parts.join(" · ");
}
