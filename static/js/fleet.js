// Fleet page behaviour that htmx attributes cannot express on their own.
(function () {
  "use strict";

  // State columns (IPs, snapshots, memory) arrive after the first paint: when the table is
  // sorted by one of them, sort again once a host's state has been swapped in.
  var pending = null;
  function sortByState() {
    pending = null;
    var table = document.getElementById("fleet-table");
    if (!table || table.dataset.stateSort !== "1") return;
    var header = table.querySelector('th[data-col="' + table.dataset.sortCol + '"]');
    if (!header) return;
    var index = Array.prototype.indexOf.call(header.parentNode.children, header);
    var numeric = header.dataset.num === "1";
    var sign = table.dataset.sortDir === "desc" ? -1 : 1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > index; });
    function value(row) {
      var text = row.cells[index].dataset.value || "";
      return numeric ? (text === "" ? -1 : Number(text)) : text;
    }
    rows.sort(function (a, b) {
      var va = value(a), vb = value(b);
      return (va < vb ? -1 : va > vb ? 1 : 0) * sign;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  }
  document.addEventListener("htmx:oobAfterSwap", function () {
    if (pending === null) pending = window.setTimeout(sortByState, 0);
  });

  // "Select all" ticks the visible rows' checkboxes (they belong to #bulk-form).
  document.addEventListener("change", function (event) {
    if (event.target.id !== "select-all") return;
    document.querySelectorAll('#fleet-table input[name="sel"]').forEach(function (box) {
      if (!box.closest("tr").hidden) box.checked = event.target.checked;
    });
  });

  // Keyboard: "/" focuses the fleet filter, unless the person is typing somewhere.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var t = event.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    var filter = document.querySelector('#fleet-filter input[name="q"]');
    if (!filter || document.querySelector("dialog[open]")) return;
    event.preventDefault();
    filter.focus();
    filter.select();
  });

  // A row's delete confirmation is a modal <dialog> (partials/instance_delete_confirm.html):
  // shown modal once swapped in, and again after a pushed row moved it (a moved dialog is no
  // longer modal). Escape closes it; closing is Cancel, which reloads the row.
  function openDialogs() {
    document.querySelectorAll("dialog[data-confirm]:not([data-closed])").forEach(function (d) {
      if (d.open && d.matches(":modal")) return;
      d.removeAttribute("open"); // no close event: this is no cancel
      d.showModal();
    });
  }
  document.addEventListener("htmx:afterSettle", openDialogs);
  document.addEventListener("htmx:oobAfterSwap", openDialogs);
  document.addEventListener("close", function (event) {
    var d = event.target;
    if (!d.matches || !d.matches("dialog[data-confirm]") || !d.isConnected) return;
    d.dataset.closed = "1";
    var cancel = d.querySelector('[data-action="cancel"]');
    if (cancel) cancel.click();
  }, true);

  // A pushed row (or cell) replaces the one that has the keyboard focus: give the focus back
  // to the same control in the new one, so a keyboard user is not thrown back to the page's top.
  var pushedFocus = null;
  document.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target, active = document.activeElement;
    if (!target || !target.id || !active || active === document.body || !target.contains(active)) return;
    pushedFocus = { id: target.id, action: active.dataset ? active.dataset.action : null, elt: active.id };
  });
  document.addEventListener("htmx:oobAfterSwap", function () {
    var want = pushedFocus;
    pushedFocus = null;
    if (!want || (document.activeElement && document.activeElement !== document.body)) return;
    var root = document.getElementById(want.id);
    if (!root) return;
    var next = (want.elt && document.getElementById(want.elt)) ||
      (want.action && root.querySelector('[data-action="' + want.action + '"]')) ||
      root.querySelector("button, a, input");
    if (next) next.focus();
  });

  // An action in a row replaces the row: keep the keyboard where it was, on the same action
  // in the new row, else on the row's first button, else (the row is gone) on the filter.
  var refocus = null;
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target, elt = event.detail.requestConfig && event.detail.requestConfig.elt;
    refocus = null;
    // A push replaced the row while the action's request was out: its answer goes into the row
    // on the page now, not into the detached one (where nobody would see it).
    if (target && target.tagName === "TR" && target.id && !target.isConnected) {
      var current = document.getElementById(target.id);
      if (current) event.detail.target = current;
    }
    if (!target || target.tagName !== "TR" || !target.id || !elt || !target.contains(elt)) return;
    var button = elt.matches("button") ? elt : null;
    var action = button ? button.dataset.action : null;
    refocus = { row: target.id, action: action === "cancel" ? "delete" : action };
  });
  document.addEventListener("htmx:afterSettle", function () {
    if (!refocus) return;
    var want = refocus;
    refocus = null;
    var row = document.getElementById(want.row);
    var next = null;
    if (row) {
      next = (want.action && row.querySelector('button[data-action="' + want.action + '"]')) ||
        row.querySelector("td.actions button, td.actions a") || row.querySelector("a");
    } else {
      next = document.querySelector('#fleet-filter input[name="q"]');
    }
    if (next && !document.querySelector("dialog[open]")) next.focus();
  });
})();
