// Live updates: one WebSocket per page. Every event asks the page's live region to refresh
// itself (htmx re-fetches it), and after a reconnect the region refreshes once anyway, so
// whatever was missed while offline is picked up from the server.
window.GNDP = window.GNDP || {};

GNDP.live = function (path, regionId) {
  (GNDP.livePaths = GNDP.livePaths || []).push(path);  // the bell reuses an open /ws/inbox/
  const status = document.querySelector("[data-live-status]");
  let delay = 500;
  let refreshTimer = null;

  function setStatus(on) {
    if (!status) return;
    status.className = "live " + (on ? "on" : "off");
    status.textContent = on ? "live" : "reconnecting…";
  }

  function refresh() {
    // Coalesce bursts: a completion brings several events in a few milliseconds.
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => htmx.trigger(document.body, "gndp:refresh"), 60);
  }

  function connect(resync) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + path);
    socket.onopen = () => { delay = 500; setStatus(true); if (resync) refresh(); };
    socket.onmessage = (message) => {
      const event = JSON.parse(message.data);
      document.dispatchEvent(new CustomEvent("gndp:event", { detail: event }));
      if (event.type === "notification.created") return;  // the bell's, not the page's
      refresh();
    };
    socket.onclose = (closed) => {
      setStatus(false);
      if (closed.code === 4401 || closed.code === 4403) return;  // refused: retrying won't help
      setTimeout(() => connect(true), delay);
      delay = Math.min(delay * 2, 10000);
    };
  }
  connect(false);
};
