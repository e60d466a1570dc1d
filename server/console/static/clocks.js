// Live clocks of the console's pages: waiting times ([data-since]) and countdowns
// (.countdown[data-kind][data-deadline]) that turn amber, then red. The thresholds (seconds
// left) come from the nearest element with data-<kind>-amber / data-<kind>-red.
(function () {
  "use strict";
  var LABELS = { pay: "距 24 小时发放时限", claim: "距认领时限", paperwork: "距补齐手续时限" };

  function pad(n) { return n < 10 ? "0" + n : String(n); }
  function span(seconds) {
    var s = Math.floor(Math.abs(seconds));
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
    return h > 0 ? h + " 小时 " + pad(m) + " 分" : m + " 分 " + pad(s % 60) + " 秒";
  }
  function limit(el, kind, level) {
    var name = "data-" + kind + "-" + level, holder = el.closest("[" + name + "]");
    return holder ? Number(holder.getAttribute(name)) : 0;
  }
  function tick() {
    var now = Date.now();
    document.querySelectorAll("[data-since]").forEach(function (el) {
      el.textContent = "已等待 " + span((now - Date.parse(el.dataset.since)) / 1000);
    });
    document.querySelectorAll(".countdown[data-deadline]").forEach(function (el) {
      var left = (Date.parse(el.dataset.deadline) - now) / 1000;
      var kind = el.dataset.kind, label = LABELS[kind] || "距时限";
      var red = limit(el, kind, "red"), amber = limit(el, kind, "amber");
      el.textContent = left >= 0 ? label + " " + span(left) : label.replace("距", "") + "已超时 " + span(left);
      el.classList.toggle("red", left <= red);
      el.classList.toggle("amber", left > red && left <= amber);
    });
  }

  window.aidlineClocks = { tick: tick };
  tick();
  setInterval(tick, 1000);
})();
