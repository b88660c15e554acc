// The sidebar's list of saved conversations.

import { gettext } from "../i18n.js";

/** Point the address bar at a conversation the server just created, and list it first. */
export function rememberConversation(config, id, title, model) {
  const url = config.conversationUrl.replace("{id}", String(id));
  if (history.replaceState) history.replaceState(null, "", url);
  const list = document.getElementById("pg-conversations");
  const empty = document.getElementById("pg-conversations-empty");
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
  link.textContent = title || gettext("New conversation");
  link.setAttribute("aria-current", "page");
  const info = document.createElement("span");
  info.className = "pg-muted";
  info.textContent = `${model} · ${gettext("just now")}`;
  item.append(link, info);
  target.prepend(item);
}
