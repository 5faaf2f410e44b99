// Live updates for the console's queue and the open conversation, without a framework: every few seconds ask the
// server whether the part changed (a small JSON version from the database, so every worker agrees), and only then
// fetch its server-rendered HTML again. The HTML comes from our own escaped templates.
(function () {
  "use strict";
  function watch(el) {
    var every = Math.max(1000, parseInt(el.getAttribute("data-poll-ms"), 10) || 2000);
    var busy = false;
    async function tick() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        var res = await fetch(el.getAttribute("data-version"), { credentials: "same-origin", cache: "no-store" });
        if (!res.ok) return;
        var version = (await res.json()).version;
        if (version === el.getAttribute("data-current")) return;
        var page = await fetch(el.getAttribute("data-live"), { credentials: "same-origin", cache: "no-store" });
        if (!page.ok) return;
        el.innerHTML = await page.text();
        el.setAttribute("data-current", version);
        el.dispatchEvent(new CustomEvent("console:updated", { bubbles: true }));
      } catch (e) {
        /* offline for a moment: try again on the next tick */
      } finally {
        busy = false;
      }
    }
    window.setInterval(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-live]"), watch);
  });
})();
