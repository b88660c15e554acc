// The playground's websocket client: connects, reconnects with backoff, sends and receives JSON
// frames. The protocol (every message each way, the error codes, close code 4401) is documented in
// one place, docs/playground.md ("Websocket protocol"); reply.js handles the server's events and
// composer.js builds the `generate` and `stop` messages.

export const CLOSE_NOT_AUTHENTICATED = 4401;
export const CLOSE_FORBIDDEN = 4403; // the site's IP rules refuse this address: retrying cannot help
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 15000;

export class PlaygroundSocket {
  /**
   * handlers: onOpen(), onEvent(event), onClose() on every close, then either
   * onSessionEnded(code) (the server closed with 4401 or 4403: no retry) or onReconnecting(seconds).
   */
  constructor(path, handlers) {
    this.path = path;
    this.handlers = handlers;
    this.socket = null;
    this.connected = false;
    this.retryDelay = FIRST_RETRY_MS;
    this.closedForGood = false;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${this.path}`);
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.connected = true;
      this.retryDelay = FIRST_RETRY_MS;
      this.handlers.onOpen();
    });
    socket.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      this.handlers.onEvent(data);
    });
    socket.addEventListener("close", (event) => {
      this.connected = false;
      this.handlers.onClose();
      if (event.code === CLOSE_NOT_AUTHENTICATED || event.code === CLOSE_FORBIDDEN) {
        this.closedForGood = true;
        this.handlers.onSessionEnded(event.code);
        return;
      }
      if (this.closedForGood) return;
      this.handlers.onReconnecting(Math.round(this.retryDelay / 1000));
      setTimeout(() => this.connect(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, MAX_RETRY_MS);
    });
  }

  /** Open and ready to take a message. */
  get ready() {
    return this.connected && this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  }

  /** Send an already-encoded frame (callers encode first to check its size). */
  sendText(text) {
    this.socket.send(text);
  }

  send(message) {
    this.sendText(JSON.stringify(message));
  }
}
