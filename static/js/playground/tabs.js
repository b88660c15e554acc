// The Chat / Completion / Embeddings tabs (ARIA tabs: arrow keys, Home and End move between them).

import { gettext } from "../i18n.js";
import { updateCode } from "./viewcode.js";

export function setMode(ctx, mode) {
  const { els, state } = ctx;
  state.mode = mode;
  for (const tab of els.tabs) {
    const selected = tab.dataset.mode === mode;
    tab.setAttribute("aria-selected", String(selected));
    tab.tabIndex = selected ? 0 : -1;
  }
  const embeddings = mode === "embeddings";
  els.generatePanel.hidden = embeddings;
  els.embeddingsPanel.hidden = !embeddings;
  if (!embeddings) els.generatePanel.setAttribute("aria-labelledby", `tab-${mode}`);
  els.systemField.hidden = mode !== "chat";
  els.knowledgeField.hidden = mode !== "chat";
  els.inputLabel.textContent = mode === "completion" ? gettext("Prompt (raw text, no chat template)") : gettext("Message");
  updateCode(ctx);
}

const STEPS = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };

export function bindTabs(ctx) {
  const tabs = ctx.els.tabs;
  tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => setMode(ctx, tab.dataset.mode));
    tab.addEventListener("keydown", (event) => {
      const step = STEPS[event.key];
      let next = null;
      if (step) next = tabs[(i + step + tabs.length) % tabs.length];
      if (event.key === "Home") next = tabs[0];
      if (event.key === "End") next = tabs[tabs.length - 1];
      if (next) {
        event.preventDefault();
        next.focus();
        setMode(ctx, next.dataset.mode);
      }
    });
  });
}
