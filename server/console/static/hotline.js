// Hotline form: townships of the chosen county, its villages, and the routing engine's
// suggestion while the operator types. Everything works without it (server-side checks).
(function () {
  "use strict";
  var form = document.getElementById("entry");
  if (!form) return;
  var county = document.getElementById("county");
  var township = document.getElementById("township_code");
  var village = document.getElementById("village");
  var preview = document.getElementById("route-preview");
  var urgent = document.getElementById("urgent");
  var aidType = document.getElementById("aid_type");

  function showTownships() {
    var chosen = county.value;
    township.querySelectorAll("optgroup").forEach(function (group) {
      var show = !chosen || group.dataset.county === chosen;
      group.hidden = !show;
      group.disabled = !show;
    });
    var selected = township.selectedOptions[0];
    if (chosen && selected && selected.dataset.county && selected.dataset.county !== chosen) township.value = "";
  }

  function loadVillages() {
    var code = township.value;
    village.innerHTML = "<option value=\"\">选填</option>";
    if (!code) return;
    fetch(form.dataset.divisionsUrl + code + "/children", { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : []; })
      .then(function (items) {
        (items || []).forEach(function (d) {
          var o = document.createElement("option");
          o.value = d.name; o.textContent = d.name;
          village.appendChild(o);
        });
      })
      .catch(function () { /* villages are optional */ });
  }

  var timer = null, asked = 0;
  function suggest() {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var n = ++asked;
      var address = form.address.value;
      if (village.value && address.indexOf(village.value) < 0) address = village.value + address;
      var q = new URLSearchParams({
        phone: form.phone.value, township_code: township.value, address: address,
        urgent: urgent.checked ? "1" : ""
      });
      fetch(form.dataset.routeUrl + "?" + q.toString(), { credentials: "same-origin" })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (d) {
          if (n !== asked) return;
          preview.textContent = "系统建议：" + (d.triage ? "转" + d.queue_name + "分拣队列" : "分派至" + d.queue_name) + "。理由：" + d.reason;
          preview.classList.toggle("triage", d.triage);
          preview.dataset.township = d.township_code || "";
        })
        .catch(function () { /* the case is routed on submit anyway */ });
    }, 250);
  }

  function urgentChanged() {
    aidType.disabled = urgent.checked;
    if (urgent.checked) aidType.value = "";
    suggest();
  }

  county.addEventListener("change", function () { showTownships(); loadVillages(); suggest(); });
  township.addEventListener("change", function () {
    var o = township.selectedOptions[0];
    if (o && o.dataset.county) county.value = o.dataset.county;
    showTownships(); loadVillages(); suggest();
  });
  village.addEventListener("change", suggest);
  form.address.addEventListener("input", suggest);
  urgent.addEventListener("change", urgentChanged);
  showTownships();
  aidType.disabled = urgent.checked;
  suggest();
})();
