// The message box: Enter or Send starts a generation, Escape or Stop cancels it.
// Builds the `generate` and `stop` messages described in docs/playground.md.

import { gettext } from "../i18n.js";
import { startReply } from "./reply.js";
import { readParams } from "./settings.js";
import { setGenerating, setStatus } from "./status.js";
import { updateCode } from "./viewcode.js";

function send(ctx) {
  const { els, state, config, socket } = ctx;
  if (state.generating) return;
  const text = els.input.value;
  if (!text.trim()) {
    setStatus(ctx, gettext("Type a message first."));
    els.input.focus();
    return;
  }
  if (!socket.ready) {
    setStatus(ctx, gettext("Not connected yet; try again in a moment."));
    return;
  }
  const mode = state.mode === "completion" ? "completion" : "chat";
  const payload = {
    type: "generate",
    mode,
    model: els.model.value,
    conversation_id: state.conversationId,
    params: readParams(els),
  };
  const userTurn = { role: "user", content: text };
  if (mode === "chat") {
    payload.messages = state.history.concat([userTurn]); // the whole conversation: the server keeps no context
    payload.system = els.system.value;
    if (els.knowledge.value) payload.knowledge_base = els.knowledge.value; // grounded: `citations` follow `started`
  } else {
    payload.prompt = text;
  }
  const raw = JSON.stringify(payload);
  if (new Blob([raw]).size > config.maxMessageBytes) {
    setStatus(ctx, gettext("This conversation is too long to send; start a new one."));
    return;
  }
  startReply(ctx, userTurn);
  els.input.value = "";
  setGenerating(ctx, true);
  setStatus(ctx, gettext("Waiting for the model…"));
  socket.sendText(raw);
  updateCode(ctx);
}

function stop(ctx) {
  if (!ctx.state.generating) return;
  ctx.socket.send({ type: "stop" });
  setStatus(ctx, gettext("Stopping…"));
}

export function bindComposer(ctx) {
  const { els, state } = ctx;
  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send(ctx);
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send(ctx);
    } else if (event.key === "Escape" && state.generating) {
      stop(ctx);
    }
  });
  els.stopButton.addEventListener("click", () => stop(ctx));
  els.input.addEventListener("input", () => updateCode(ctx));
}
