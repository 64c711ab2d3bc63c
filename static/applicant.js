// The applicant's page, progressively enhanced: dates are rendered by the server in the
// booking's time zone; here they are rewritten in the browser's own zone, and an empty
// "I've booked" form gets that zone preselected. Without JavaScript the page stays as served.
(function () {
  "use strict";
  var zone;
  try {
    zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
  } catch (e) {
    return;
  }
  if (!zone) return;
  var format = new Intl.DateTimeFormat(undefined, {
    weekday: "long", day: "numeric", month: "long", year: "numeric",
    hour: "2-digit", minute: "2-digit", timeZone: zone
  });
  document.querySelectorAll("time[data-local]").forEach(function (el) {
    var when = new Date(el.getAttribute("datetime"));
    if (!isNaN(when)) el.textContent = format.format(when);
  });
  document.querySelectorAll("[data-local-zone]").forEach(function (el) {
    el.textContent = zone.replace(/_/g, " ") + " time (your device's time zone)";
  });
  document.querySelectorAll("select[data-browser-zone]").forEach(function (select) {
    var known = Array.prototype.some.call(select.options, function (o) { return o.value === zone; });
    if (known) select.value = zone;
  });
})();
