// The discussion panel: a comment or a file added by anyone makes the list fetch itself again.
// The process page's socket brings these events already; a task page opens the task's own.
(function () {
  document.addEventListener("gndp:event", (e) => {
    const type = e.detail && e.detail.type;
    if (type === "comment.added" || type === "attachment.added") htmx.trigger(document.body, "gndp:discussion");
  });
  document.addEventListener("DOMContentLoaded", () => {
    const panel = document.querySelector("[data-discussion][data-socket]");
    if (panel && !(GNDP.livePaths || []).includes(panel.dataset.socket)) GNDP.live(panel.dataset.socket);
  });
})();
