// The playground page's elements and the data the server put in it (json_script blocks).

export function readJson(id) {
  return JSON.parse(document.getElementById(id).textContent);
}

export function findElements(root) {
  const $ = (id) => document.getElementById(id);
  return {
    tabs: Array.from(root.querySelectorAll("[role=tab]")),
    generatePanel: $("pg-generate-panel"),
    embeddingsPanel: $("pg-embeddings-panel"),
    model: $("pg-model"),
    system: $("pg-system"),
    systemField: $("pg-system-field"),
    knowledge: $("pg-knowledge"),
    knowledgeField: $("pg-knowledge-field"),
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
}

export function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  return input ? input.value : "";
}
