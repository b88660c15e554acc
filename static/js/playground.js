// LLM OS Portal playground: chat and completions streamed over a websocket, embeddings over fetch.
// Plain ES modules, no build step; the pieces live in ./playground/. User text is only ever
// written with textContent (never innerHTML).

import { gettext, interpolate } from "./i18n.js";
import { bindComposer } from "./playground/composer.js";
import { bindEmbeddings } from "./playground/embeddings.js";
import { findElements, readJson } from "./playground/page.js";
import { failReply, handleEvent } from "./playground/reply.js";
import { bindSettings, fillSettings } from "./playground/settings.js";
import { CLOSE_FORBIDDEN, PlaygroundSocket } from "./playground/socket.js";
import { setGenerating, setStatus } from "./playground/status.js";
import { bindTabs, setMode } from "./playground/tabs.js";
import { addTurn, setMeta } from "./playground/transcript.js";
import { updateCode } from "./playground/viewcode.js";

/** Reopen a saved conversation: its mode, settings and turns (chat turns become the context). */
function restore(ctx, conversation) {
  setMode(ctx, conversation.mode === "completion" ? "completion" : "chat");
  fillSettings(ctx.els, conversation);
  for (const message of conversation.messages) {
    const turn = addTurn(ctx, message.role, message.content);
    if (message.role === "assistant") {
      setMeta(turn.meta, message.completion_tokens, message.tokens_per_s, message.finish_reason === "cancelled");
    }
    if (conversation.mode === "chat") ctx.state.history.push({ role: message.role, content: message.content });
  }
}

function start(root) {
  const config = readJson("pg-config");
  const saved = readJson("pg-conversation");
  const ctx = {
    root,
    config,
    els: findElements(root),
    state: {
      mode: "chat", // chat | completion | embeddings
      conversationId: saved ? saved.id : null,
      history: [], // chat turns sent as context: {role, content}
      generating: false,
      reply: null, // the reply being streamed: {turn, body, meta, text, pendingUser}
    },
    socket: null,
  };
  ctx.socket = new PlaygroundSocket(config.wsPath, {
    onOpen() {
      setStatus(ctx, gettext("Connected."));
      setGenerating(ctx, false);
    },
    onEvent(event) {
      handleEvent(ctx, event);
    },
    onClose() {
      if (ctx.state.generating) failReply(ctx, gettext("The connection dropped; the reply was interrupted."));
      setGenerating(ctx, false);
    },
    onSessionEnded(code) {
      setStatus(
        ctx,
        code === CLOSE_FORBIDDEN
          ? gettext("Requests from your address are not allowed here.")
          : gettext("Your session has ended. Log in again to use the playground."),
      );
    },
    onReconnecting(seconds) {
      setStatus(ctx, interpolate(gettext("Disconnected. Reconnecting in %(seconds)s s…"), { seconds }));
    },
  });

  bindTabs(ctx);
  bindComposer(ctx);
  bindSettings(ctx.els, () => updateCode(ctx));
  bindEmbeddings(ctx);

  if (saved) restore(ctx, saved);
  else setMode(ctx, "chat");
  setGenerating(ctx, false);
  updateCode(ctx);
  ctx.socket.connect();
}

const root = document.getElementById("playground");
if (root) start(root);
