// Restore a backup file as a new instance: the file goes over a websocket in frames paced by
// the server's acknowledgements (hosts/views/backup_upload_socket.py), like the file upload.
(function () {
  "use strict";
  const FRAME = 1024 * 1024;
  const WINDOW = 4 * FRAME;

  function restore(form, file) {
    const status = form.querySelector("#restore-status");
    const progress = form.querySelector("#restore-progress");
    const button = form.querySelector("button[type=submit]");
    const value = (n) => form.elements[n].value.trim();
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + form.dataset.ws);
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

    async function pump() {
      if (pumping) return;
      pumping = true;
      try {
        while (sent < file.size && sent - acked < WINDOW && ws.readyState === WebSocket.OPEN) {
          const start = sent;
          sent = Math.min(start + FRAME, file.size);
          ws.send(await file.slice(start, sent).arrayBuffer());
        }
      } finally {
        pumping = false;
      }
    }

    ws.onopen = () => {
      ws.send(JSON.stringify({ host: value("host"), name: value("name"), pool: value("pool"), size: file.size }));
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "ready") {
        say("Uploading " + file.name + "…");
        pump();
      } else if (msg.type === "ack") {
        acked = msg.received;
        progress.value = file.size ? acked / file.size : 1;
        if (acked === file.size) say("Uploaded; " + value("host") + " is unpacking it…");
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
      if (!finished) say("The connection closed before the restore finished.", "error");
    };
  }

  document.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "restore-form") return;
    event.preventDefault();
    const file = form.elements.file.files[0];
    if (file && window.WebSocket) restore(form, file);
  });
})();
