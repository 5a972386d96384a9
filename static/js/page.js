// What the pages used to do in inline scripts and attributes, wired from data attributes, so
// the Content-Security-Policy can refuse every inline script (script-src 'self') and every
// inline style (style-src 'self'): sizes set here through the DOM are not inline styles.
window.GNDP = window.GNDP || {};

(function () {
  // Bars and chart boxes whose size the server computed: data-width (%), data-height (px).
  function size(root) {
    root.querySelectorAll("[data-width]").forEach((el) => { el.style.width = Number(el.dataset.width) + "%"; });
    root.querySelectorAll("[data-height]").forEach((el) => { el.style.height = Number(el.dataset.height) + "px"; });
  }

  function one(selector) { return document.querySelector(selector); }

  document.addEventListener("DOMContentLoaded", () => {
    size(document);

    // The workflow graph, drawn from a json_script block; data-graph-follow redraws it after
    // each htmx swap of the page's live region (the process page).
    const graph = one("[data-graph]");
    if (graph && GNDP.graph) {
      const read = () => { const data = document.getElementById(graph.dataset.graph); return data && JSON.parse(data.textContent); };
      const drawn = GNDP.current = GNDP.graph(graph, read());
      if ("graphFollow" in graph.dataset) {
        document.body.addEventListener("htmx:afterSwap", () => { const data = read(); if (data) drawn.update(data); });
      }
    }

    // The page's live region, refreshed by the events of its socket.
    const live = one("[data-live-socket]");
    if (live) GNDP.live(live.dataset.liveSocket, live.dataset.liveRegion);

    const dashboard = one("[data-dashboard]");
    if (dashboard && GNDP.dashboard) GNDP.dashboard(dashboard.dataset.dashboard || null);

    // The notifications list follows the bell.
    const list = one("[data-refresh-on-notification]");
    if (list) {
      const id = "#" + list.dataset.refreshOnNotification;
      document.addEventListener("gndp:notification", () =>
        htmx.ajax("GET", location.href, { target: id, select: id, swap: "outerHTML" }));
    }
  });

  // Content swapped in by htmx gets its sizes too.
  document.addEventListener("htmx:load", (e) => size(e.detail.elt.parentElement || e.detail.elt));

  // A filter that applies itself when chosen.
  document.addEventListener("change", (e) => {
    if (e.target.matches && e.target.matches("[data-submit-on-change]")) e.target.form.submit();
  });

  // A form htmx sent successfully is emptied; data-reset-after-request="marker" keeps it
  // when the answer carries that marker (an inline error).
  document.addEventListener("htmx:afterRequest", (e) => {
    const form = e.detail.elt;
    if (!form.matches || !form.matches("form[data-reset-after-request]") || !e.detail.successful) return;
    const marker = form.dataset.resetAfterRequest;
    if (marker && e.detail.xhr.responseText.includes(marker)) return;
    form.reset();
  });
})();
