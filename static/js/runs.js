// Live progress of model runs: polls the progress API of every run still pending or running and
// updates its bar, counts, speed and latest errors. Data from the server is set with textContent.
"use strict";

(function () {
  const ACTIVE = new Set(["pending", "running"]);
  const POLL_MS = 2000;

  function formatSeconds(seconds) {
    if (seconds === null || seconds === undefined) return "";
    if (seconds < 90) return Math.round(seconds) + " s";
    if (seconds < 5400) return Math.round(seconds / 60) + " min";
    return (seconds / 3600).toFixed(1) + " h";
  }

  function render(row, data) {
    row.dataset.status = data.status;
    const status = row.querySelector(".run-status");
    if (status) status.textContent = data.status.charAt(0).toUpperCase() + data.status.slice(1);
    const bar = row.querySelector(".run-bar");
    if (bar) {
      bar.max = Math.max(1, data.total);
      bar.value = data.done + data.failed;
    }
    const counts = row.querySelector(".run-counts");
    if (counts) counts.textContent = data.done + " done, " + data.failed + " failed of " + data.total;
    const speed = row.querySelector(".run-speed");
    if (speed) {
      let text = data.items_per_second + " items/s, " + data.tokens_per_second + " tokens/s";
      if (data.eta_seconds !== null) text += ", about " + formatSeconds(data.eta_seconds) + " left";
      speed.textContent = text;
    }
    const errorsRow = document.querySelector('.run-errors-row[data-run-id="' + row.dataset.runId + '"]');
    const list = (errorsRow || row).querySelector(".run-errors");
    if (list) {
      list.replaceChildren();
      for (const error of data.latest_errors) {
        const item = document.createElement("li");
        item.textContent = error.input_key + " (" + error.status + "): " + error.error;
        list.appendChild(item);
      }
    }
  }

  async function poll(row) {
    try {
      const response = await fetch(row.dataset.progressUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (response.ok) render(row, await response.json());
    } catch (err) {
      // A missed poll (server restarting) is retried on the next tick.
    }
  }

  function tick() {
    const rows = Array.from(document.querySelectorAll(".run-row[data-progress-url]"));
    const active = rows.filter((row) => ACTIVE.has(row.dataset.status));
    if (document.visibilityState === "visible") active.forEach(poll);
    if (active.length) window.setTimeout(tick, POLL_MS);
  }

  function showParams() {
    const source = document.getElementById("run-params");
    const target = document.querySelector(".run-params-text");
    if (source && target) target.textContent = JSON.stringify(JSON.parse(source.textContent));
  }

  document.addEventListener("DOMContentLoaded", function () {
    showParams();
    // Errors of every run (also finished ones) are shown once; active runs keep updating.
    document.querySelectorAll(".run-row[data-progress-url]").forEach(poll);
    window.setTimeout(tick, POLL_MS);
  });
})();
