// Queue page: a poll for new arrivals, title count, notification and sound (clocks.js ticks).
(function () {
  "use strict";
  var root = document.getElementById("queue");
  if (!root) return;
  var POLL_MS = 1500;
  var liveUrl = root.dataset.liveUrl;
  var stamp = root.dataset.stamp;
  var newestUrgent = root.dataset.newestUrgent || "";
  var baseTitle = document.title;
  var soundKey = "aidline.console.sound";
  var askedKey = "aidline.console.notifyAsked";

  function soundOn() { return localStorage.getItem(soundKey) !== "off"; }
  var soundButton = document.getElementById("sound-toggle");
  function showSound() {
    soundButton.textContent = "紧急提示音：" + (soundOn() ? "开" : "关");
    soundButton.setAttribute("aria-pressed", soundOn() ? "true" : "false");
  }
  soundButton.addEventListener("click", function () {
    localStorage.setItem(soundKey, soundOn() ? "off" : "on");
    showSound();
  });
  showSound();

  var audio = null;
  // Browsers allow sound only after the officer has touched the page once.
  document.addEventListener("click", function () {
    if (!audio && window.AudioContext) audio = new AudioContext();
    if (audio && audio.state === "suspended") audio.resume();
  });
  function beep() {
    if (!soundOn() || !audio) return;
    [0, 0.35].forEach(function (at) {
      var osc = audio.createOscillator(), gain = audio.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain); gain.connect(audio.destination);
      osc.start(audio.currentTime + at); osc.stop(audio.currentTime + at + 0.2);
    });
  }

  var notifyButton = document.getElementById("notify-enable");
  if ("Notification" in window && Notification.permission === "default" && !localStorage.getItem(askedKey)) {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", function () {
      localStorage.setItem(askedKey, "1");
      notifyButton.hidden = true;
      Notification.requestPermission();
    });
  }
  function notify(count) {
    if ("Notification" in window && Notification.permission === "granted") {
      new Notification("新的紧急求助", { body: "待受理紧急求助 " + count + " 件", tag: "aidline-urgent" });
    }
  }

  function title(pulse) {
    document.title = (pulse.queued > 0 ? "(" + pulse.queued + ") " : "") + baseTitle;
    document.getElementById("count-queued").textContent = pulse.queued;
    document.getElementById("count-urgent").textContent = pulse.urgent_queued;
  }

  function refreshRows() {
    var seen = {};
    document.querySelectorAll("#queue-rows [data-case-no]").forEach(function (el) { seen[el.dataset.caseNo] = 1; });
    return fetch(location.href, { credentials: "same-origin", headers: { "X-Console-Passive": "rows" } })
      .then(function (r) { if (!r.ok) throw new Error(r.status); return r.text(); })
      .then(function (html) {
        var box = document.getElementById("queue-rows");
        box.innerHTML = html;
        box.querySelectorAll("[data-case-no]").forEach(function (el) {
          if (!seen[el.dataset.caseNo]) el.classList.add("case-new");
        });
        window.aidlineClocks.tick();
      });
  }

  // The server answers at once (poll again in POLL_MS) or, when it can wait for a change
  // (PostgreSQL LISTEN), once the queue differs from our stamp: then ask again at once.
  var busy = false, waits = false, timer = null;
  function next(delay) {
    clearTimeout(timer);
    timer = setTimeout(poll, delay);
  }
  function poll() {
    if (busy) return;
    busy = true;
    var url = liveUrl + (liveUrl.indexOf("?") < 0 ? "?" : "&") + "since=" + encodeURIComponent(stamp);
    var ok = false;
    fetch(url, { credentials: "same-origin", headers: { "X-Console-Passive": "json", "Accept": "application/json" } })
      .then(function (r) {
        if (r.status === 401) { location.href = root.dataset.loginUrl; throw new Error("signed out"); }
        if (!r.ok) throw new Error(r.status);
        return r.json();
      })
      .then(function (pulse) {
        ok = true;
        waits = pulse.waits === true;
        title(pulse);
        var urgentArrived = pulse.newest_urgent_at && pulse.newest_urgent_at !== newestUrgent &&
          (!newestUrgent || pulse.newest_urgent_at > newestUrgent);
        if (pulse.newest_urgent_at) newestUrgent = pulse.newest_urgent_at;
        if (urgentArrived) { beep(); notify(pulse.urgent_queued); }
        if (pulse.stamp !== stamp) {
          stamp = pulse.stamp;
          return refreshRows();
        }
      })
      .catch(function () { /* the next poll tries again */ })
      .then(function () { busy = false; next(ok && waits ? 0 : POLL_MS); });
  }

  next(POLL_MS);
})();
