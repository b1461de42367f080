// Upload a file over a websocket (static/js/upload.js; hosts/views/upload_socket.py).  Without
// JavaScript the form posts multipart as usual.
(function () {
  "use strict";

  function upload(form, file, overwrite) {
    const field = (n) => (form.elements[n] ? form.elements[n].value : "");
    const dir = form.dataset.dir.replace(/\/+$/, "");
    const path = dir + "/" + (field("name") || file.name);
    const status = form.querySelector("#upload-status");
    window.streamUpload({
      socketPath: form.dataset.ws,
      header: {
        path: path, size: file.size, mode: field("mode"), uid: field("uid"), gid: field("gid"),
        overwrite: !!overwrite,
      },
      files: [file],
      status: status,
      progress: form.querySelector("#upload-progress"),
      button: form.querySelector("button[type=submit]"),
      uploading: "Uploading " + path + "…",
      what: "upload",
      onDone: refreshListing,
      onError: (msg) => {
        if (msg.status === 409 && /already exists/.test(msg.message)) offerReplace(form, file, status);
      },
    });
  }

  function offerReplace(form, file, status) {
    const replace = document.createElement("button");
    replace.type = "button";
    replace.className = "warn";
    replace.id = "upload-replace";
    replace.textContent = "Replace it";
    replace.addEventListener("click", () => upload(form, file, true));
    status.append(" ", replace);
  }

  function refreshListing() {
    const table = document.querySelector("table.files");
    if (!table || !window.htmx) return location.reload();
    htmx.ajax("GET", location.href, { target: "#" + table.id, select: "#" + table.id, swap: "outerHTML" });
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "upload-form" || !window.WebSocket) return;
    const file = form.elements.file.files[0];
    if (!file) return;
    event.preventDefault();
    upload(form, file, form.elements.overwrite.checked);
  });
})();
