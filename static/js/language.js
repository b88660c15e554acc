// The language switcher in the top bar (Django's set_language form): picking a language submits
// it at once, so the form's button is only needed without JavaScript.

const form = document.querySelector("form[data-language-switcher]");
if (form) {
  const select = form.querySelector("select");
  const button = form.querySelector("button");
  if (button) button.hidden = true;
  select.addEventListener("change", () => form.requestSubmit());
}
