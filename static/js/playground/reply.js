// Renders the server's events for one generation into the transcript as they stream in.
// The events and their fields: docs/playground.md ("Websocket protocol", server to client).

import { gettext, interpolate } from "../i18n.js";
import { rememberConversation } from "./conversations.js";
import { setGenerating, setStatus } from "./status.js";
import { addTurn, showCitations, scrollToEnd, setMeta } from "./transcript.js";
import { updateCode } from "./viewcode.js";

/** Show the user's turn and an empty, streaming reply under it; the reply fills in from events. */
export function startReply(ctx, userTurn) {
  addTurn(ctx, "user", userTurn.content);
  const reply = addTurn(ctx, "assistant", "");
  reply.turn.classList.add("is-streaming");
  reply.text = "";
  reply.pendingUser = userTurn; // joins the chat history once the server has started (saved) it
  ctx.state.reply = reply;
}

export function handleEvent(ctx, event) {
  const { state } = ctx;
  const reply = state.reply;
  switch (event.type) {
    case "ready":
    case "pong":
      break;
    case "started":
      if (reply && reply.pendingUser) {
        if (state.mode === "chat") state.history.push(reply.pendingUser);
        reply.pendingUser = null;
      }
      if (event.conversation_id !== state.conversationId) {
        state.conversationId = event.conversation_id;
        rememberConversation(ctx.config, event.conversation_id, event.conversation_title, event.model);
      }
      setStatus(ctx, gettext("Generating…"));
      break;
    case "citations":
      if (reply) showCitations(reply, event);
      break;
    case "token":
      if (!reply) return;
      reply.text += event.text;
      reply.body.textContent = reply.text;
      scrollToEnd(ctx);
      break;
    case "done":
      if (!reply) return;
      setMeta(reply.meta, event.usage.completion_tokens, event.tokens_per_s, false);
      reply.turn.classList.remove("is-streaming");
      finishReply(ctx, reply);
      setStatus(ctx, event.finish_reason === "length" ? gettext("Done (reached max tokens).") : gettext("Done."));
      break;
    case "stopped":
      if (!reply) return;
      reply.turn.classList.remove("is-streaming");
      reply.turn.classList.add("is-stopped");
      if (event.usage) {
        setMeta(reply.meta, event.usage.completion_tokens, event.tokens_per_s, true);
        finishReply(ctx, reply);
      } else {
        reply.meta.textContent = gettext("Stopped before the first token.");
        state.reply = null;
      }
      setGenerating(ctx, false);
      setStatus(ctx, gettext("Stopped."));
      break;
    case "error":
      if (reply) {
        failReply(ctx, event.message || gettext("Something went wrong."), event.code);
      } else {
        setStatus(ctx, interpolate(gettext("Error: %(message)s"), { message: event.message || event.code }));
      }
      setGenerating(ctx, false);
      break;
    default:
      break;
  }
}

function finishReply(ctx, reply) {
  const { state } = ctx;
  if (state.mode === "chat") state.history.push({ role: "assistant", content: reply.text });
  state.reply = null;
  setGenerating(ctx, false);
  updateCode(ctx);
}

/** End the current reply with an error under it; an unsaved message goes back in the input to retry. */
export function failReply(ctx, message, code) {
  const { els, state } = ctx;
  const reply = state.reply;
  state.reply = null;
  if (!reply) return;
  reply.turn.classList.remove("is-streaming");
  reply.turn.classList.add("is-error");
  reply.meta.textContent = code
    ? interpolate(gettext("Error (%(code)s): %(message)s"), { code, message })
    : interpolate(gettext("Error: %(message)s"), { message });
  reply.meta.setAttribute("role", "alert");
  if (reply.pendingUser && !els.input.value) els.input.value = reply.pendingUser.content; // not saved: retry
  setStatus(ctx, interpolate(gettext("Error: %(message)s"), { message }));
}
