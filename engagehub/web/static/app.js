// engagehub dashboard: draws the campaign charts and follows the live event stream.
// No inline scripts (the Content-Security-Policy forbids them): data comes from a JSON block.
(function () {
  "use strict";
  window.engagehubCharts = {};

  function drawCharts() {
    var block = document.getElementById("chart-data");
    if (!block || typeof Chart === "undefined") return;
    var data = JSON.parse(block.textContent);
    var palette = ["#1f5fa8", "#2e7d32", "#b35c00", "#6a1b9a", "#c62828", "#00695c"];
    var funnel = document.getElementById("funnel");
    if (funnel) {
      window.engagehubCharts.funnel = new Chart(funnel, {
        type: "bar",
        data: {
          labels: data.funnel.labels,
          datasets: [{ label: "Messages", data: data.funnel.values, backgroundColor: palette }],
        },
        options: { animation: false, indexAxis: "y", plugins: { legend: { display: false } } },
      });
    }
    var series = document.getElementById("series");
    if (series) {
      window.engagehubCharts.series = new Chart(series, {
        type: "line",
        data: {
          labels: data.series.labels,
          datasets: data.series.datasets.map(function (d, i) {
            return { label: d.label, data: d.values, borderColor: palette[i % palette.length],
                     backgroundColor: palette[i % palette.length], tension: 0 };
          }),
        },
        options: { animation: false, scales: { y: { beginAtZero: true } } },
      });
    }
  }

  function cell(text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    return td;
  }

  function followLive() {
    var table = document.getElementById("live");
    if (!table) return;
    var rows = document.getElementById("live-rows");
    var after = table.getAttribute("data-after") || "0";
    function poll() {
      fetch("/live/events?after=" + encodeURIComponent(after), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : { events: [] }; })
        .then(function (body) {
          body.events.forEach(function (e) {
            var tr = document.createElement("tr");
            [e.seq, e.timestamp, e.event || e.vendor_event || e.type, e.channel, e.message_id,
             e.campaign_id].forEach(function (v) { tr.appendChild(cell(v)); });
            rows.insertBefore(tr, rows.firstChild);
            after = String(e.seq);
          });
          table.setAttribute("data-after", after);
        })
        .catch(function () {})
        .then(function () { window.setTimeout(poll, 2000); });
    }
    poll();
  }

  // Copy buttons next to values to paste elsewhere (URLs, keys shown once).
  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (!target) return;
        var done = function () { button.textContent = "Copied"; };
        if (navigator.clipboard) {
          navigator.clipboard.writeText(target.textContent).then(done, function () {});
        } else {
          window.getSelection().selectAllChildren(target);
        }
      });
    });
  }

  // Forms that change consent, send messages or revoke keys ask first.
  function confirmForms() {
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
      });
    });
  }

  // The CSV upload: sent with XMLHttpRequest to show its progress, then the import's page.
  function uploadWithProgress() {
    var form = document.getElementById("upload-form");
    var bar = document.getElementById("upload-progress");
    if (!form || !bar || !window.FormData) return;
    form.addEventListener("submit", function (event) {
      if (event.defaultPrevented) return; // the confirmation was declined
      event.preventDefault();
      var xhr = new XMLHttpRequest();
      xhr.upload.addEventListener("progress", function (e) {
        if (e.lengthComputable) bar.value = Math.round((e.loaded / e.total) * 100);
      });
      xhr.addEventListener("load", function () {
        bar.value = 100;
        if (xhr.status < 400) {
          window.location.assign(xhr.responseURL || "/consent");
          return;
        }
        var page = new DOMParser().parseFromString(xhr.responseText, "text/html");
        var message = page.querySelector(".error");
        var alert = document.getElementById("upload-error");
        alert.textContent = message ? message.textContent : "Upload failed (" + xhr.status + ")";
        alert.hidden = false;
      });
      xhr.open("POST", form.action);
      xhr.send(new FormData(form));
    });
  }

  // The template editor: while the user types, the draft is posted to the preview route and
  // the rendered preview (and any error) replace the page's. Without JavaScript the Preview
  // button does the same with a page load.
  function livePreview() {
    var form = document.getElementById("template-form");
    var pane = document.getElementById("preview");
    var status = document.getElementById("editor-status");
    if (!form || !pane || !status || !window.FormData || !form.getAttribute("data-preview")) return;
    var timer = null;
    var sent = 0;
    function refresh() {
      var mine = ++sent;
      fetch(form.getAttribute("data-preview"), {
        method: "POST", body: new FormData(form), credentials: "same-origin",
      })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          if (mine !== sent) return; // a newer draft is on its way
          var page = new DOMParser().parseFromString(html, "text/html");
          var shown = page.getElementById("preview");
          var said = page.getElementById("editor-status");
          if (!shown || !said) return; // not the editor (e.g. signed out): leave the page be
          pane.innerHTML = shown.innerHTML;
          status.innerHTML = said.innerHTML;
          pane.setAttribute("data-live", String(mine));
        })
        .catch(function () {});
    }
    form.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(refresh, 300);
    });
  }

  // Pages of running work (imports, broadcasts) reload until it is over.
  function refreshWhileRunning() {
    var node = document.querySelector("[data-refresh]");
    if (!node) return;
    window.setTimeout(function () { window.location.reload(); },
                      parseInt(node.getAttribute("data-refresh"), 10) || 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts();
    followLive();
    copyButtons();
    confirmForms();
    uploadWithProgress();
    livePreview();
    refreshWhileRunning();
  });
})();
