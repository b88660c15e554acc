// Draws the usage charts from the page's JSON data. The tables carry the same numbers for
// readers without JavaScript (or a screen reader).
(function () {
  "use strict";
  var source = document.getElementById("usage-data");
  if (!source || typeof Chart === "undefined") return;
  var data = JSON.parse(source.textContent);
  var common = {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } },
    plugins: { legend: { position: "bottom" } }
  };
  function draw(id, datasets) {
    var canvas = document.getElementById(id);
    if (!canvas) return;
    var chart = new Chart(canvas, { type: "bar", data: { labels: data.days, datasets: datasets }, options: common });
    canvas.dataset.rendered = "true";
    return chart;
  }
  draw("requests-chart", [
    { label: "Succeeded", data: data.requests.map(function (n, i) { return n - data.errors[i]; }), backgroundColor: "#3451d1" },
    { label: "Failed", data: data.errors, backgroundColor: "#b42318" }
  ]);
  draw("tokens-chart", [
    { label: "Prompt tokens", data: data.prompt_tokens, backgroundColor: "#7a8ce6" },
    { label: "Completion tokens", data: data.completion_tokens, backgroundColor: "#067647" }
  ]);
})();
