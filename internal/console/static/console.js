// Shows every <time datetime> in the viewer's time zone; the UTC time the
// server wrote stays in the title, shown on hover. No build step, no
// dependencies: the console works without it, in UTC.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  // ISO-like order (sv-SE) reads the same in every locale: 2026-11-30 15:10:43 GMT+9.
  var fmt = new Intl.DateTimeFormat("sv-SE", {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (!isNaN(d)) {
      el.textContent = fmt.format(d);
      el.title = el.getAttribute("datetime") + " (UTC)";
    }
  });
});
