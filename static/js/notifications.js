// The bell: its count follows the caller's notifications live over /ws/inbox/. On the inbox
// page that socket is already open (GNDP.live); elsewhere the bell opens its own.
window.GNDP = window.GNDP || {};

(function () {
  let bell = null;

  function setCount(n) {
    const count = bell && bell.querySelector("[data-bell-count]");
    if (!count) return;
    count.textContent = String(n);
    count.hidden = !n;
    bell.setAttribute("aria-label", "Notifications: " + n + " unread");
    bell.classList.remove("ring");
    void bell.offsetWidth;  // restart the animation
    if (n) bell.classList.add("ring");
  }

  function onMessage(data) {
    if (!data || data.type !== "notification.created") return;
    setCount(data.unread_count);
    document.dispatchEvent(new CustomEvent("gndp:notification", { detail: data }));
  }

  function resync() {
    fetch("/api/notifications/unread-count", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then((r) => (r.ok ? r.json() : null)).then((body) => { if (body) setCount(body.unread); }).catch(() => {});
  }

  let delay = 500;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/inbox/");
    socket.onopen = () => { delay = 500; bell.dataset.bellLive = "on"; resync(); };  // what came before it opened
    socket.onmessage = (message) => onMessage(JSON.parse(message.data));
    socket.onclose = (closed) => {
      bell.dataset.bellLive = "off";
      if (closed.code === 4401 || closed.code === 4403) return;
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  document.addEventListener("gndp:event", (e) => onMessage(e.detail));
  GNDP.bellCount = setCount;
  document.addEventListener("DOMContentLoaded", () => {
    bell = document.querySelector("[data-bell]");
    if (!bell) return;
    // Page scripts opened their sockets in their own DOMContentLoaded handlers, before this one.
    if ((GNDP.livePaths || []).includes("/ws/inbox/")) bell.dataset.bellLive = "on";
    else connect();
  });
})();
