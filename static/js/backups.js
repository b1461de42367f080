// Restore a backup file as a new instance: the file goes over a websocket (static/js/upload.js;
// hosts/views/backup_upload_socket.py), like the file upload.
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "restore-form") return;
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (!file || !window.WebSocket) return;
    const value = (n) => form.elements[n].value.trim();
    window.streamUpload({
      socketPath: form.dataset.ws,
      header: { host: value("host"), name: value("name"), pool: value("pool"), size: file.size },
      files: [file],
      status: form.querySelector("#restore-status"),
      progress: form.querySelector("#restore-progress"),
      button: form.querySelector("button[type=submit]"),
      uploading: "Uploading " + file.name + "…",
      unpacking: "Uploaded; " + value("host") + " is unpacking it…",
      what: "restore",
    });
  });
})();
