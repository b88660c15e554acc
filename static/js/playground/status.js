// The status line and the generating/idle state of the composer.

export function setStatus(ctx, text) {
  ctx.els.status.textContent = text;
}

export function setGenerating(ctx, on) {
  const { els, state } = ctx;
  state.generating = on;
  els.send.disabled = on || !ctx.socket.connected;
  els.stopButton.disabled = !on;
  els.transcript.setAttribute("aria-busy", String(on)); // announce the reply once, not every token
  ctx.root.classList.toggle("is-generating", on);
}
