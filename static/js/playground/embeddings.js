// The Embeddings tab: embeds one text per line over fetch (not the websocket) and shows the
// pairwise cosine similarity matrix.

import { gettext, interpolate, ngettext } from "../i18n.js";
import { csrfToken } from "./page.js";

function similarityColour(value) {
  const v = Math.max(0, Math.min(1, value));
  return `hsl(${Math.round(220 - 100 * v)}, 70%, ${Math.round(96 - 30 * v)}%)`;
}

function short(text) {
  return text.length > 40 ? `${text.slice(0, 39)}…` : text;
}

function renderSimilarity(els, result) {
  const table = els.embedTable;
  table.replaceChildren();
  const caption = document.createElement("caption");
  caption.className = "visually-hidden";
  caption.textContent = gettext("Pairwise cosine similarity between the texts");
  const head = document.createElement("thead");
  const headRow = document.createElement("tr");
  const corner = document.createElement("th");
  corner.scope = "col";
  corner.textContent = gettext("Text");
  headRow.append(corner);
  result.texts.forEach((text, i) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = `#${i + 1}`;
    th.title = text;
    headRow.append(th);
  });
  head.append(headRow);
  const bodyEl = document.createElement("tbody");
  result.similarity.forEach((row, i) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = `#${i + 1} ${short(result.texts[i])}`;
    th.title = result.texts[i];
    tr.append(th);
    row.forEach((value) => {
      const td = document.createElement("td");
      td.textContent = value.toFixed(3);
      td.style.background = similarityColour(value); // CSSOM, not a style attribute: fine under a CSP
      tr.append(td);
    });
    bodyEl.append(tr);
  });
  table.append(caption, head, bodyEl);
  const count = result.texts.length;
  els.embedSummary.textContent = [
    interpolate(ngettext("%(count)s text", "%(count)s texts", count), { count }),
    interpolate(gettext("%(count)s dimensions"), { count: result.dimensions }),
    interpolate(ngettext("%(count)s token", "%(count)s tokens", result.usage.prompt_tokens), {
      count: result.usage.prompt_tokens,
    }),
    result.model,
  ].join(" · ");
  els.embedResult.hidden = false;
}

export function bindEmbeddings(ctx) {
  const { els, config } = ctx;
  els.embedForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const texts = els.embedTexts.value.split("\n").filter((t) => t.trim());
    if (!texts.length) {
      els.embedStatus.textContent = gettext("Enter at least one text.");
      return;
    }
    els.embedButton.disabled = true;
    els.embedStatus.textContent = gettext("Embedding…");
    try {
      const response = await fetch(config.embeddingsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify({ model: els.embedModel.value, texts }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const error = data.error || {};
        els.embedStatus.textContent = interpolate(gettext("Error (%(code)s): %(message)s"), {
          code: error.code || response.status,
          message: error.message || gettext("request failed"),
        });
        return;
      }
      renderSimilarity(els, data);
      els.embedStatus.textContent = gettext("Done.");
    } catch {
      els.embedStatus.textContent = gettext("The request failed; check your connection.");
    } finally {
      els.embedButton.disabled = false;
    }
  });
}
