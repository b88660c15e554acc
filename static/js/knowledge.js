// A knowledge base's page: while any document is processing, poll the base's status every two
// seconds and update each row's status, progress and error in place; stop when none is left.

const table = document.getElementById("documents");
const POLL_MS = 2000;

function updateRow(row, doc) {
  row.dataset.status = doc.status;
  const status = row.querySelector("[data-role=status]");
  status.textContent = doc.label;
  status.className = `status ${doc.status}`;
  row.querySelector("[data-role=progress]").value = doc.progress;
  row.querySelector("[data-role=chunks]").textContent = doc.chunks ? `${doc.chunks} chunks` : "";
  row.querySelector("[data-role=error]").textContent = doc.error;
}

async function poll() {
  const response = await fetch(table.dataset.statusUrl, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const body = await response.json();
  let processing = false;
  for (const doc of body.documents) {
    const row = table.querySelector(`tr[data-document-id="${doc.id}"]`);
    if (row) updateRow(row, doc);
    processing ||= doc.status === "in_progress";
  }
  const counts = body.vector_store.file_counts;
  document.getElementById("kb-summary").textContent = `${counts.completed} of ${counts.total} documents ready`;
  if (processing) window.setTimeout(poll, POLL_MS);
}

if (table && table.querySelector('tr[data-status="in_progress"]')) {
  window.setTimeout(poll, POLL_MS);
}
