// The monitoring dashboard: Chart.js charts drawn from the JSON each part of the page
// carries, and live refreshes. Every event marks the parts it touches; after a quiet spell
// (and at least every few seconds under a steady stream) one request fetches only those
// parts, which the server returns as out-of-band fragments. After a reconnect every part
// is fetched once, so what was missed offline is picked up. /ws/monitoring/ sends each viewer
// its own scope's events (a manager's team, or everything); a page given no socket (null)
// gets the same refresh on a timer instead. The workers' banner is also refreshed on a timer
// of its own: a worker that is gone sends no events.
window.GNDP = window.GNDP || {};

(function () {
  const ALL = ["workers", "cards", "processes", "timeline", "queues", "workload", "trend", "sla", "bottlenecks", "graph"];
  const TASK_PARTS = ["workers", "cards", "processes", "queues", "workload", "bottlenecks", "graph"];
  const QUIET_MS = 400;       // wait for a burst (one completion is several events) to end
  const MAX_WAIT_MS = 2500;   // but never longer than this under a steady stream,
  const MIN_GAP_MS = 2000;    // and leave the server this long between two refreshes
  const POLL_MS = 20000;
  // A worker that is gone sends no events: its banner is asked for on a timer as well.
  const WORKERS_MS = 15000;
  const COLOURS = {
    completed: "#15803d", open: "#2563eb", late: "#b91c1c", other: "#64748b",
    expected: "rgba(148, 163, 184, .45)", expectedLine: "#64748b",
    started: "#93c5fd", done: "#15803d", sla: "#a16207", amber: "#a16207", grid: "#e3e6ee", ink: "#1f2937",
  };

  // --- formatting -----------------------------------------------------------------------------

  function duration(seconds) {
    if (seconds == null || isNaN(seconds)) return "—";
    const sign = seconds < 0 ? "-" : "";
    let s = Math.round(Math.abs(seconds));
    const d = Math.floor(s / 86400); s -= d * 86400;
    const h = Math.floor(s / 3600); s -= h * 3600;
    const m = Math.floor(s / 60);
    if (d) return sign + d + "d" + (h ? " " + h + "h" : "");
    if (h) return sign + h + "h" + (m ? " " + m + "m" : "");
    if (m) return sign + m + "m";
    return sign + s + "s";
  }

  function dayLabel(iso) {
    const [y, mo, d] = iso.split("-").map(Number);
    return new Date(y, mo - 1, d).toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
  }

  // --- charts ---------------------------------------------------------------------------------

  function base(animate) {
    return {
      responsive: true, maintainAspectRatio: false, animation: animate ? { duration: 300 } : false,
      plugins: { legend: { display: false } },
    };
  }

  function gantt(canvas, steps, animate) {
    const now = Date.parse(canvas.dataset.now);
    const origin = Math.min(...steps.map((s) => Date.parse(s.start)));
    const at = (iso) => (Date.parse(iso) - origin) / 1000;
    const actualColour = (s) => s.late ? COLOURS.late
      : s.status === "completed" ? COLOURS.completed
      : s.status === "pending" || s.status === "in_progress" ? COLOURS.open : COLOURS.other;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: steps.map((s) => s.name),
        datasets: [
          {
            label: "Actual", order: 0, grouped: false, barPercentage: 0.5, categoryPercentage: 1, minBarLength: 3,
            data: steps.map((s) => [at(s.start), s.end ? at(s.end) : (now - origin) / 1000]),
            backgroundColor: steps.map(actualColour),
          },
          {
            label: "Expected", order: 1, grouped: false, barPercentage: 0.9, categoryPercentage: 1,
            data: steps.map((s) => s.expected_end ? [at(s.start), at(s.expected_end)] : null),
            backgroundColor: COLOURS.expected, borderColor: COLOURS.expectedLine, borderWidth: 1,
          },
        ],
      },
      options: {
        ...base(animate), indexAxis: "y",
        scales: {
          x: { min: 0, ticks: { callback: (v) => "+" + duration(v), maxTicksLimit: 8, color: COLOURS.ink },
               title: { display: true, text: "time since the first step started", color: COLOURS.ink },
               grid: { color: COLOURS.grid } },
          y: { ticks: { autoSkip: false, color: COLOURS.ink }, grid: { display: false } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => {
            const step = steps[item.dataIndex];
            if (item.dataset.label === "Expected") return "Expected: " + duration(step.expected_seconds);
            return "Actual: " + duration(step.actual_seconds) + " (" + step.status.replace("_", " ") +
              (step.late ? ", late" : "") + (step.assigned_to ? ", " + step.assigned_to : "") + ")";
          } } },
        },
      },
    });
  }

  function sla(canvas, rows, animate) {
    const shown = rows.filter((r) => r.percent_within_target != null);
    const colour = (p) => p >= 90 ? COLOURS.completed : p >= 75 ? COLOURS.amber : COLOURS.late;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: shown.map((r) => r.name),
        datasets: [{
          label: "Within target", data: shown.map((r) => r.percent_within_target),
          backgroundColor: shown.map((r) => colour(r.percent_within_target)), barPercentage: 0.7, minBarLength: 2,
        }],
      },
      options: {
        ...base(animate), indexAxis: "y",
        scales: {
          x: { min: 0, max: 100, ticks: { callback: (v) => v + "%", color: COLOURS.ink }, grid: { color: COLOURS.grid } },
          y: { ticks: { autoSkip: false, color: COLOURS.ink }, grid: { display: false } },
        },
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: { label: (item) => {
            const r = shown[item.dataIndex];
            return r.percent_within_target + "% of " + r.completed + " within " + duration(r.target_seconds) +
              " (p50 " + duration(r.p50_seconds) + ", p95 " + duration(r.p95_seconds) + ")";
          } } },
        },
      },
    });
  }

  function trend(canvas, days, animate) {
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: days.map((d) => dayLabel(d.date)),
        datasets: [
          { label: "Started", data: days.map((d) => d.started), backgroundColor: COLOURS.started, yAxisID: "y" },
          { label: "Completed", data: days.map((d) => d.completed), backgroundColor: COLOURS.done, yAxisID: "y" },
          { label: "Steps within SLA (%)", type: "line", data: days.map((d) => d.percent_within_target),
            borderColor: COLOURS.sla, backgroundColor: COLOURS.sla, yAxisID: "y1", spanGaps: true, tension: 0.2,
            pointRadius: 3 },
        ],
      },
      options: {
        ...base(animate),
        scales: {
          x: { ticks: { color: COLOURS.ink, maxRotation: 0, autoSkipPadding: 12 }, grid: { display: false } },
          y: { beginAtZero: true, ticks: { precision: 0, color: COLOURS.ink },
               title: { display: true, text: "processes", color: COLOURS.ink }, grid: { color: COLOURS.grid } },
          y1: { position: "right", min: 0, max: 100, ticks: { callback: (v) => v + "%", color: COLOURS.ink },
                grid: { display: false } },
        },
        plugins: { legend: { display: true, position: "bottom", labels: { color: COLOURS.ink } } },
      },
    });
  }

  const DRAW = { gantt, sla, trend };
  const charts = {};

  function drawCharts(root, animate) {
    if (!window.Chart || !root.querySelectorAll) return;
    const canvases = root.matches && root.matches("canvas[data-chart]") ? [root] : root.querySelectorAll("canvas[data-chart]");
    canvases.forEach((canvas) => {
      const kind = canvas.dataset.chart;
      const source = document.getElementById(canvas.dataset.source);
      if (!source || !DRAW[kind]) return;
      if (charts[kind]) charts[kind].destroy();  // its canvas was swapped out
      charts[kind] = DRAW[kind](canvas, JSON.parse(source.textContent), animate);
    });
  }

  // --- which process the timeline shows -------------------------------------------------------

  function selectedProcess() {
    const timeline = document.getElementById("dash-timeline");
    return timeline ? timeline.dataset.processId : "";
  }

  function markSelectedRow() {
    const chosen = selectedProcess();
    document.querySelectorAll("#dash-processes tr[data-process-id]").forEach((row) => {
      if (row.dataset.processId === chosen) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
    });
  }

  // --- live refreshes -------------------------------------------------------------------------

  function partsFor(event) {
    const type = (event && event.type) || "";
    let parts;
    if (!/^(process|task|sla)\./.test(type)) return [];  // not a workflow event
    if (type === "task.completed") parts = ALL.filter((p) => p !== "timeline");
    else if (type.startsWith("process.")) parts = [...TASK_PARTS, "trend"];
    else if (type.startsWith("sla.") || type === "task.escalated") parts = [...TASK_PARTS, "sla"];
    else parts = TASK_PARTS;
    if (String(event.process_id) === selectedProcess()) parts = [...parts, "timeline"];
    return parts;
  }

  function refresher() {
    const pending = new Set();
    let timer = null, firstPendingAt = 0, lastFlushAt = 0, inFlight = false, askedFor = null;

    // A refresh that left before the filters changed must not paint the old filters' figures
    // over the new ones.
    document.body.addEventListener("htmx:oobBeforeSwap", (event) => {
      const body = document.getElementById("dashboard-body");
      if (inFlight && body && askedFor !== body.dataset.refreshUrl) event.preventDefault();
    });

    function schedule() {
      const now = Date.now();
      if (!firstPendingAt) firstPendingAt = now;
      clearTimeout(timer);
      const wait = Math.max(Math.min(QUIET_MS, firstPendingAt + MAX_WAIT_MS - now), lastFlushAt + MIN_GAP_MS - now);
      timer = setTimeout(flush, Math.max(0, wait));
    }

    function flush() {
      const body = document.getElementById("dashboard-body");
      if (!pending.size || !body) return;
      if (inFlight) { timer = setTimeout(flush, QUIET_MS); return; }
      const parts = ALL.filter((p) => pending.has(p));
      pending.clear();
      firstPendingAt = 0;
      lastFlushAt = Date.now();
      askedFor = body.dataset.refreshUrl;
      const url = new URL(askedFor, location.href);
      url.searchParams.set("parts", parts.join(","));
      if (parts.includes("timeline") && selectedProcess()) url.searchParams.set("process", selectedProcess());
      inFlight = true;
      body.setAttribute("aria-busy", "true");
      const done = () => {
        inFlight = false;
        body.removeAttribute("aria-busy");
        if (pending.size) schedule();
      };
      htmx.ajax("GET", url.pathname + url.search, { target: "#dashboard-body", swap: "none" }).then(done, done);
    }

    return function mark(parts) {
      parts.forEach((p) => pending.add(p));
      schedule();
    };
  }

  GNDP.dashboard = function (socketPath) {
    const mark = refresher();
    drawCharts(document.body, true);
    markSelectedRow();
    // Not htmx.onLoad: called from a DOMContentLoaded listener, before htmx is ready, it
    // would wait for a DOMContentLoaded that has already begun and never register.
    document.body.addEventListener("htmx:load", (event) => {
      const elt = event.detail.elt || event.target;
      if (elt === document.body) return;  // drawn above
      drawCharts(elt, false);
      markSelectedRow();
    });
    // Back and forward restore the page from htmx's snapshot, where a canvas is blank.
    document.body.addEventListener("htmx:historyRestore", () => { drawCharts(document.body, false); markSelectedRow(); });
    if (socketPath) {
      let sawEvent = false;
      document.addEventListener("gndp:event", (e) => {
        const parts = partsFor(e.detail);
        if (parts.length) { sawEvent = true; mark(parts); }
      });
      // live.js asks for a refresh after each burst of events, and once after a reconnect:
      // only the latter comes with no event before it.
      document.body.addEventListener("gndp:refresh", () => {
        if (!sawEvent) mark(ALL);
        sawEvent = false;
      });
      GNDP.live(socketPath, "dashboard-body");
    } else {
      setInterval(() => { if (!document.hidden) mark(ALL); }, POLL_MS);
    }
    setInterval(() => { if (!document.hidden) mark(["workers"]); }, WORKERS_MS);
  };
})();
