// Times in the viewer's own time zone: the server writes UTC into <time data-local> (see the
// `when` tag in hosts/templatetags/dashboard.py) with the exact UTC time as its title; here the
// text becomes local time, for the page and for every fragment htmx swaps in later.
(function () {
  "use strict";
  function pad(n) { return (n < 10 ? "0" : "") + n; }
  function local(root) {
    if (!root || !root.querySelectorAll) return;
    var times = Array.prototype.slice.call(root.querySelectorAll("time[data-local]"));
    if (root.matches && root.matches("time[data-local]")) times.push(root);
    times.forEach(function (t) {
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) return;
      var clock = pad(d.getHours()) + ":" + pad(d.getMinutes());
      var text = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " + clock;
      if (t.dataset.local === "seconds") text += ":" + pad(d.getSeconds());
      if (t.dataset.local === "clock") text = clock + ":" + pad(d.getSeconds());
      t.textContent = text;
      t.removeAttribute("data-local");
    });
  }
  document.addEventListener("DOMContentLoaded", function () { local(document); });
  document.addEventListener("htmx:load", function (event) { local(event.detail.elt); });
})();
