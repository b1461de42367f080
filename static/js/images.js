// Import an image over a websocket (static/js/upload.js; hosts/views/image_import_socket.py):
// one file for a unified image, or the metadata then the rootfs of a split image, sent one
// after the other as one stream.
(function () {
  "use strict";
  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "image-import-form") return;
    event.preventDefault();
    if (!window.WebSocket || !form.elements.image.files[0]) return;
    const host = form.elements.host.value;
    const files = [form.elements.image.files[0]];
    if (form.elements.rootfs.files[0]) files.push(form.elements.rootfs.files[0]);
    const aliases = form.elements.aliases.value.split(",").map((a) => a.trim()).filter((a) => a);
    window.streamUpload({
      socketPath: "/ws/hosts/" + encodeURIComponent(host) + "/images/import/",
      header: { files: files.map((f) => ({ name: f.name, size: f.size })), aliases: aliases },
      files: files,
      status: form.querySelector("#image-import-status"),
      progress: form.querySelector("#image-import-progress"),
      button: form.querySelector("button[type=submit]"),
      uploading: "Uploading to " + host + "…",
      unpacking: "Uploaded: " + host + " is unpacking the image…",
      what: "import",
    });
  });
})();
