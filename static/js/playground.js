/* LLM OS Portal playground: chat and completions streamed over a websocket, embeddings over fetch.
 * Vanilla JS, no build step. User text is only ever written with textContent (never innerHTML). */
(function () {
  "use strict";

  const $ = (id) => document.getElementById(id);
  const root = $("playground");
  if (!root) return;

  const config = JSON.parse($("pg-config").textContent);
  const saved = JSON.parse($("pg-conversation").textContent);
  const csrfInput = document.querySelector("input[name=csrfmiddlewaretoken]");

  const els = {
    tabs: Array.from(root.querySelectorAll("[role=tab]")),
    generatePanel: $("pg-generate-panel"),
    embeddingsPanel: $("pg-embeddings-panel"),
    model: $("pg-model"),
    system: $("pg-system"),
    systemField: $("pg-system-field"),
    temperature: $("pg-temperature"),
    topP: $("pg-top-p"),
    maxTokens: $("pg-max-tokens"),
    stop: $("pg-stop"),
    settings: $("pg-settings"),
    transcript: $("pg-transcript"),
    empty: $("pg-transcript-empty"),
    composer: $("pg-composer"),
    input: $("pg-input"),
    inputLabel: $("pg-input-label"),
    send: $("pg-send"),
    stopButton: $("pg-stop-button"),
    status: $("pg-status"),
    codeCurl: $("pg-code-curl"),
    codePython: $("pg-code-python"),
    embedForm: $("pg-embed-form"),
    embedModel: $("pg-embed-model"),
    embedTexts: $("pg-embed-texts"),
    embedButton: $("pg-embed-button"),
    embedStatus: $("pg-embed-status"),
    embedResult: $("pg-embed-result"),
    embedSummary: $("pg-embed-summary"),
    embedTable: $("pg-embed-table"),
  };

  const state = {
    mode: "chat", // chat | completion | embeddings
    conversationId: saved ? saved.id : null,
    history: [], // chat turns sent as context: {role, content}
    socket: null,
    connected: false,
    retryDelay: 1000,
    closedForGood: false,
    generating: false,
    reply: null, // {body, meta, text, pendingUser}
  };

  // ---- settings ---------------------------------------------------------------------------

  function encodeStops(stops) {
    return (stops || []).map((s) => s.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/\t/g, "\\t")).join(", ");
  }

  function parseStops(text) {
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

  function params() {
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

  function applySaved(conversation) {
    if (!conversation) return;
    setMode(conversation.mode === "completion" ? "completion" : "chat");
    const p = conversation.params || {};
    if (conversation.model && Array.from(els.model.options).some((o) => o.value === conversation.model)) {
      els.model.value = conversation.model;
    }
    els.system.value = conversation.system || "";
    if (p.temperature !== undefined) els.temperature.value = p.temperature;
    if (p.top_p !== undefined) els.topP.value = p.top_p;
    if (p.max_tokens !== undefined) els.maxTokens.value = p.max_tokens;
    els.stop.value = encodeStops(p.stop);
    for (const message of conversation.messages) {
      const turn = addTurn(message.role, message.content);
      if (message.role === "assistant") {
        setMeta(turn.meta, message.completion_tokens, message.tokens_per_s, message.finish_reason === "cancelled");
      }
      if (conversation.mode === "chat") state.history.push({ role: message.role, content: message.content });
    }
  }

  // ---- tabs -------------------------------------------------------------------------------

  function setMode(mode) {
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
    els.inputLabel.textContent = mode === "completion" ? "Prompt (raw text, no chat template)" : "Message";
    updateCode();
  }

  els.tabs.forEach((tab, i) => {
    tab.addEventListener("click", () => setMode(tab.dataset.mode));
    tab.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
      let next = null;
      if (step) next = els.tabs[(i + step + els.tabs.length) % els.tabs.length];
      if (event.key === "Home") next = els.tabs[0];
      if (event.key === "End") next = els.tabs[els.tabs.length - 1];
      if (next) {
        event.preventDefault();
        next.focus();
        setMode(next.dataset.mode);
      }
    });
  });

  // ---- transcript -------------------------------------------------------------------------

  function addTurn(role, text) {
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
    els.transcript.scrollTop = els.transcript.scrollHeight;
    return { turn, body, meta };
  }

  function setMeta(meta, tokens, tokensPerS, stopped) {
    const parts = [];
    if (stopped) parts.push("Stopped");
    if (tokens !== null && tokens !== undefined) parts.push(`${tokens} token${tokens === 1 ? "" : "s"}`);
    if (tokensPerS) parts.push(`${Number(tokensPerS).toFixed(1)} tok/s`);
    meta.textContent = parts.join(" · ");
  }

  function setStatus(text) {
    els.status.textContent = text;
  }

  function setGenerating(on) {
    state.generating = on;
    els.send.disabled = on || !state.connected;
    els.stopButton.disabled = !on;
    els.transcript.setAttribute("aria-busy", String(on)); // announce the reply once, not every token
    root.classList.toggle("is-generating", on);
  }

  // ---- socket -----------------------------------------------------------------------------

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${config.wsPath}`);
    state.socket = socket;
    socket.addEventListener("open", () => {
      state.connected = true;
      state.retryDelay = 1000;
      setStatus("Connected.");
      setGenerating(false);
    });
    socket.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      handle(data);
    });
    socket.addEventListener("close", (event) => {
      state.connected = false;
      if (state.generating) failReply("The connection dropped; the reply was interrupted.");
      setGenerating(false);
      if (event.code === 4401) {
        state.closedForGood = true;
        setStatus("Your session has ended. Log in again to use the playground.");
        return;
      }
      if (state.closedForGood) return;
      setStatus(`Disconnected. Reconnecting in ${Math.round(state.retryDelay / 1000)} s…`);
      setTimeout(connect, state.retryDelay);
      state.retryDelay = Math.min(state.retryDelay * 2, 15000);
    });
  }

  function handle(event) {
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
          rememberConversation(event.conversation_id, event.conversation_title, event.model);
        }
        setStatus("Generating…");
        break;
      case "token":
        if (!reply) return;
        reply.text += event.text;
        reply.body.textContent = reply.text;
        els.transcript.scrollTop = els.transcript.scrollHeight;
        break;
      case "done":
        if (!reply) return;
        setMeta(reply.meta, event.usage.completion_tokens, event.tokens_per_s, false);
        reply.turn.classList.remove("is-streaming");
        finishReply(reply);
        setStatus(event.finish_reason === "length" ? "Done (reached max tokens)." : "Done.");
        break;
      case "stopped":
        if (!reply) return;
        reply.turn.classList.remove("is-streaming");
        reply.turn.classList.add("is-stopped");
        if (event.usage) {
          setMeta(reply.meta, event.usage.completion_tokens, event.tokens_per_s, true);
          finishReply(reply);
        } else {
          reply.meta.textContent = "Stopped before the first token.";
          state.reply = null;
        }
        setGenerating(false);
        setStatus("Stopped.");
        break;
      case "error":
        if (reply) {
          failReply(event.message || "Something went wrong.", event.code);
        } else {
          setStatus(`Error: ${event.message || event.code}`);
        }
        setGenerating(false);
        break;
      default:
        break;
    }
  }

  function finishReply(reply) {
    if (state.mode === "chat") state.history.push({ role: "assistant", content: reply.text });
    state.reply = null;
    setGenerating(false);
    updateCode();
  }

  function failReply(message, code) {
    const reply = state.reply;
    state.reply = null;
    if (!reply) return;
    reply.turn.classList.remove("is-streaming");
    reply.turn.classList.add("is-error");
    reply.meta.textContent = `Error${code ? ` (${code})` : ""}: ${message}`;
    reply.meta.setAttribute("role", "alert");
    if (reply.pendingUser && !els.input.value) els.input.value = reply.pendingUser.content; // not saved: retry
    setStatus(`Error: ${message}`);
  }

  function rememberConversation(id, title, model) {
    const url = config.conversationUrl.replace("{id}", String(id));
    if (history.replaceState) history.replaceState(null, "", url);
    const list = $("pg-conversations");
    const empty = $("pg-conversations-empty");
    if (empty) empty.hidden = true;
    let target = list;
    if (!target) {
      target = document.createElement("ul");
      target.id = "pg-conversations";
      target.className = "pg-conversations";
      document.querySelector(".pg-sidebar").append(target);
    }
    if (target.querySelector(`[data-conversation-id="${id}"]`)) return;
    const item = document.createElement("li");
    item.dataset.conversationId = String(id);
    item.className = "current";
    const link = document.createElement("a");
    link.href = url;
    link.textContent = title || "New conversation";
    link.setAttribute("aria-current", "page");
    const info = document.createElement("span");
    info.className = "pg-muted";
    info.textContent = `${model} · just now`;
    item.append(link, info);
    target.prepend(item);
  }

  // ---- sending ----------------------------------------------------------------------------

  function send() {
    if (state.generating) return;
    const text = els.input.value;
    if (!text.trim()) {
      setStatus("Type a message first.");
      els.input.focus();
      return;
    }
    if (!state.connected || !state.socket || state.socket.readyState !== WebSocket.OPEN) {
      setStatus("Not connected yet; try again in a moment.");
      return;
    }
    const mode = state.mode === "completion" ? "completion" : "chat";
    const payload = {
      type: "generate",
      mode,
      model: els.model.value,
      conversation_id: state.conversationId,
      params: params(),
    };
    const userTurn = { role: "user", content: text };
    if (mode === "chat") {
      payload.messages = state.history.concat([userTurn]);
      payload.system = els.system.value;
    } else {
      payload.prompt = text;
    }
    const raw = JSON.stringify(payload);
    if (new Blob([raw]).size > config.maxMessageBytes) {
      setStatus("This conversation is too long to send; start a new one.");
      return;
    }
    addTurn("user", text);
    const reply = addTurn("assistant", "");
    reply.turn.classList.add("is-streaming");
    reply.text = "";
    reply.pendingUser = userTurn;
    state.reply = reply;
    els.input.value = "";
    setGenerating(true);
    setStatus("Waiting for the model…");
    state.socket.send(raw);
    updateCode();
  }

  function stop() {
    if (!state.generating || !state.socket) return;
    state.socket.send(JSON.stringify({ type: "stop" }));
    setStatus("Stopping…");
  }

  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    } else if (event.key === "Escape" && state.generating) {
      stop();
    }
  });
  els.stopButton.addEventListener("click", stop);

  // ---- "View code" ------------------------------------------------------------------------

  function py(value) {
    return JSON.stringify(value); // JSON strings and numbers are valid Python literals
  }

  function shellQuote(text) {
    return `'${text.replace(/'/g, `'\\''`)}'`;
  }

  function codeRequest() {
    const p = params();
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

  function updateCode() {
    if (!els.codeCurl) return;
    const { path, body } = codeRequest();
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

  els.settings.addEventListener("input", updateCode);
  els.settings.addEventListener("change", updateCode);
  els.settings.addEventListener("submit", (event) => event.preventDefault());
  els.input.addEventListener("input", updateCode);

  // ---- embeddings -------------------------------------------------------------------------

  function similarityColour(value) {
    const v = Math.max(0, Math.min(1, value));
    return `hsl(${Math.round(220 - 100 * v)}, 70%, ${Math.round(96 - 30 * v)}%)`;
  }

  function short(text) {
    return text.length > 40 ? `${text.slice(0, 39)}…` : text;
  }

  function renderSimilarity(result) {
    const table = els.embedTable;
    table.replaceChildren();
    const caption = document.createElement("caption");
    caption.className = "visually-hidden";
    caption.textContent = "Pairwise cosine similarity between the texts";
    const head = document.createElement("thead");
    const headRow = document.createElement("tr");
    const corner = document.createElement("th");
    corner.scope = "col";
    corner.textContent = "Text";
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
        td.style.background = similarityColour(value);
        tr.append(td);
      });
      bodyEl.append(tr);
    });
    table.append(caption, head, bodyEl);
    els.embedSummary.textContent =
      `${result.texts.length} text${result.texts.length === 1 ? "" : "s"} · ${result.dimensions} dimensions · ` +
      `${result.usage.prompt_tokens} tokens · ${result.model}`;
    els.embedResult.hidden = false;
  }

  els.embedForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const texts = els.embedTexts.value.split("\n").filter((t) => t.trim());
    if (!texts.length) {
      els.embedStatus.textContent = "Enter at least one text.";
      return;
    }
    els.embedButton.disabled = true;
    els.embedStatus.textContent = "Embedding…";
    try {
      const response = await fetch(config.embeddingsUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfInput ? csrfInput.value : "" },
        body: JSON.stringify({ model: els.embedModel.value, texts }),
      });
      const data = await response.json().catch(() => ({}));
      if (!response.ok) {
        const error = data.error || {};
        els.embedStatus.textContent = `Error (${error.code || response.status}): ${error.message || "request failed"}`;
        return;
      }
      renderSimilarity(data);
      els.embedStatus.textContent = "Done.";
    } catch (e) {
      els.embedStatus.textContent = "The request failed; check your connection.";
    } finally {
      els.embedButton.disabled = false;
    }
  });

  // ---- start ------------------------------------------------------------------------------

  applySaved(saved);
  if (!saved) setMode("chat");
  setGenerating(false);
  updateCode();
  connect();
})();
