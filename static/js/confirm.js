// Asks before a destructive form submits: <form data-confirm="Delete this?"> shows the question in
// a confirm() dialog and submits only on OK. Replaces inline onsubmit="return confirm(...)"
// handlers, so the pages work under a Content-Security-Policy without 'unsafe-inline'.

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.dataset.confirm) return;
  if (!window.confirm(form.dataset.confirm)) event.preventDefault();
});
