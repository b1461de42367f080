// Import an image over a websocket, streamed in frames paced by the server's acknowledgements
// (see hosts/upload_consumer.py and hosts/views/image_import_socket.py): one file for a unified
// image, or the metadata then the rootfs of a split image, sent one after the other.
(function () {
  "use strict";
  const FRAME = 1024 * 1024;
  const WINDOW = 4 * FRAME;

  function importImage(form) {
    const status = form.querySelector("#image-import-status");
    const progress = form.querySelector("#image-import-progress");
    const button = form.querySelector("button[type=submit]");
    const host = form.elements.host.value;
    const files = [form.elements.image.files[0]];
    if (form.elements.rootfs.files[0]) files.push(form.elements.rootfs.files[0]);
    const aliases = form.elements.aliases.value.split(",").map((a) => a.trim()).filter((a) => a);
    const total = files.reduce((sum, f) => sum + f.size, 0);
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + "/ws/hosts/" + encodeURIComponent(host) + "/images/import/");
    let sent = 0;
    let acked = 0;
    let finished = false;
    let pumping = false;

    const say = (text, kind) => {
      status.textContent = text;
      status.className = kind || "";
    };
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    say("Connecting…");

    // The bytes of all files as one stream: file i covers [start_i, start_i + size_i).
    async function slice(from, to) {
      const parts = [];
      let offset = 0;
      for (const file of files) {
        const lo = Math.max(from, offset);
        const hi = Math.min(to, offset + file.size);
        if (lo < hi) parts.push(await file.slice(lo - offset, hi - offset).arrayBuffer());
        offset += file.size;
      }
      return parts.length === 1 ? parts[0] : new Blob(parts).arrayBuffer();
    }

    async function pump() {
      if (pumping) return;
      pumping = true;
      try {
        while (sent < total && sent - acked < WINDOW && ws.readyState === WebSocket.OPEN) {
          const start = sent;
          sent = Math.min(start + FRAME, total);
          ws.send(await slice(start, sent));
        }
      } finally {
        pumping = false;
      }
    }

    ws.onopen = () => {
      ws.send(JSON.stringify({ files: files.map((f) => ({ name: f.name, size: f.size })), aliases: aliases }));
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "ready") {
        say("Uploading to " + host + "…");
        pump();
      } else if (msg.type === "ack") {
        acked = msg.received;
        progress.value = total ? acked / total : 1;
        if (acked === total) say("Uploaded: " + host + " is unpacking the image…");
        pump();
      } else if (msg.type === "done") {
        finished = true;
        progress.value = 1;
        say(msg.message, "ok");
      } else if (msg.type === "error") {
        finished = true;
        say(msg.message, "error");
      }
    };
    ws.onclose = () => {
      button.disabled = false;
      if (!finished) say("The connection closed before the import finished.", "error");
    };
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "image-import-form") return;
    event.preventDefault();
    if (!window.WebSocket || !form.elements.image.files[0]) return;
    importImage(form);
  });
})();
