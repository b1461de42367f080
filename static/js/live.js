// The live connection's state, shown on the page and readable by tests (#live[data-live]),
// and "live:resync" on <body> after a reconnect: live tables listen for it and refresh
// themselves over plain HTTP (hx-trigger="live:resync from:body").
(function () {
  function live(event) {
    var elt = event.target;
    return elt && elt.id === "live" ? elt : null;
  }
  document.addEventListener("htmx:wsOpen", function (event) {
    var elt = live(event);
    if (!elt) return;
    var reconnected = elt.dataset.opened === "1";
    elt.dataset.opened = "1";
    elt.dataset.live = "open";
    if (reconnected) htmx.trigger(document.body, "live:resync");
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var elt = live(event);
    if (elt) elt.dataset.live = "reconnecting";
  });
})();
