// The live connection's state, shown on the page and readable by tests (#live[data-live]),
// and "live:resync" on <body> after a reconnect: live tables listen for it and refresh
// themselves over plain HTTP (hx-trigger="live:resync from:body").
(function () {
  // After the server was away a while, come back within seconds of its return: the
  // extension's default backoff grows to a minute.  The jitter still spreads the pages out.
  htmx.config.wsReconnectDelay = function (retries) {
    return 500 + Math.random() * 1000 * Math.pow(2, Math.min(retries, 2));
  };
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
  // The server found this page older than what the relay has seen (it started after the
  // page was rendered): catch up as after a reconnect.
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.target && event.target.id === "live-resync") htmx.trigger(document.body, "live:resync");
  });
  // An instance page shows its fleet row (#instance-summary): when a push changes that row,
  // the page's details reload ("live:instance"), once for a burst of pushes.
  var pendingInstance = null;
  document.addEventListener("htmx:oobAfterSwap", function (event) {
    var summary = document.getElementById("instance-summary");
    if (!summary || !event.target || !event.target.id) return;
    var row = summary.dataset.liveRow, id = event.target.id;
    var parts = ["", "-status", "-ips", "-snapshots", "-memory", "-actions"];
    if (!parts.some(function (part) { return id === row + part; })) return;
    if (pendingInstance !== null) window.clearTimeout(pendingInstance);
    pendingInstance = window.setTimeout(function () {
      pendingInstance = null;
      htmx.trigger(document.body, "live:instance");
    }, 50);
  });
  // A pushed row replaces the whole row; keep what the person is doing in it: an open
  // inline confirmation (delete?), or the outcome of their last action (LXD's error text),
  // until their next action replaces it.
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    var fragment = event.detail.fragment;
    if (!target || target.tagName !== "TR" || !fragment || !fragment.querySelector) return;
    // An action of this row is under way: its answer (the row as LXD has it then) will
    // replace the row; swapping now would leave that answer nowhere to go.
    if (target.classList.contains("htmx-request") || target.querySelector(".htmx-request")) {
      event.detail.shouldSwap = false;
      return;
    }
    var mine = target.querySelector("td.actions");
    var cell = fragment.querySelector("td.actions");
    if (!mine || !cell) return;
    // Move (not copy) the live nodes: they keep their htmx bindings and what was typed.
    if (mine.querySelector(".confirm-inline")) {
      cell.replaceWith(mine);
      return;
    }
    var outcome = mine.querySelector(".outcome");
    if (outcome && !cell.querySelector(".outcome")) cell.appendChild(outcome);
  });
  document.addEventListener("htmx:wsClose", function (event) {
    var elt = live(event);
    if (elt) elt.dataset.live = "reconnecting";
  });
})();
