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
})();
