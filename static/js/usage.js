// Draws the usage charts from the page's JSON data. The tables carry the same numbers for
// readers without JavaScript (or a screen reader). Chart is the global from the vendored
// Chart.js UMD build, loaded by a classic <script> before this module runs.

/* global Chart */

import { gettext } from "./i18n.js";

const common = {
  responsive: true,
  maintainAspectRatio: false,
  animation: false,
  scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
  plugins: { legend: { position: "bottom" } },
};

function draw(data, id, datasets) {
  const canvas = document.getElementById(id);
  if (!canvas) return null;
  const chart = new Chart(canvas, { type: "bar", data: { labels: data.days, datasets }, options: common });
  canvas.dataset.rendered = "true";
  return chart;
}

const source = document.getElementById("usage-data");
if (source && typeof Chart !== "undefined") {
  const data = JSON.parse(source.textContent);
  draw(data, "requests-chart", [
    { label: gettext("Succeeded"), data: data.requests.map((n, i) => n - data.errors[i]), backgroundColor: "#3451d1" },
    { label: gettext("Failed"), data: data.errors, backgroundColor: "#b42318" },
  ]);
  draw(data, "tokens-chart", [
    { label: gettext("Prompt tokens"), data: data.prompt_tokens, backgroundColor: "#7a8ce6" },
    { label: gettext("Completion tokens"), data: data.completion_tokens, backgroundColor: "#067647" },
  ]);
}
