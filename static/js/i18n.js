// The page's translations for the browser code: Django's JavaScriptCatalog (/jsi18n/, a classic
// <script> in base.html that runs before any module) defines window.django. Without it (a page
// that does not load it, or a failed request) every string stays in English.

const catalog = globalThis.django || {};

export function gettext(text) {
  return catalog.gettext ? catalog.gettext(text) : text;
}

export function ngettext(singular, plural, count) {
  if (catalog.ngettext) return catalog.ngettext(singular, plural, count);
  return count === 1 ? singular : plural;
}

/** "%(name)s" placeholders filled from `values`, as Django's interpolate(fmt, values, true). */
export function interpolate(format, values) {
  return format.replace(/%\(\w+\)s/g, (match) => String(values[match.slice(2, -2)]));
}
