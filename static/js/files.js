// Upload a file over a websocket, streamed in frames paced by the server's acknowledgements
// (see hosts/upload_consumer.py).  Without JavaScript the form posts multipart as usual.
(function () {
  "use strict";
  const FRAME = 1024 * 1024;
  const WINDOW = 4 * FRAME;

  function upload(form, file, overwrite) {
    const status = form.querySelector("#upload-status");
    const progress = form.querySelector("#upload-progress");
    const button = form.querySelector("button[type=submit]");
    const field = (n) => (form.elements[n] ? form.elements[n].value : "");
    const dir = form.dataset.dir.replace(/\/+$/, "");
    const name = field("name") || file.name;
    const path = dir + "/" + name;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + form.dataset.ws);
    let sent = 0;
    let acked = 0;
    let finished = false;

    const say = (text, kind) => {
      status.textContent = text;
      status.className = kind || "";
    };
    button.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    say("Connecting…");

    let pumping = false;
    async function pump() {
      if (pumping) return; // one reader at a time keeps the frames in order
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
      ws.send(JSON.stringify({
        path: path, size: file.size, mode: field("mode"), uid: field("uid"), gid: field("gid"),
        overwrite: !!overwrite,
      }));
    };
    ws.onmessage = (event) => {
      const msg = JSON.parse(event.data);
      if (msg.type === "ready") {
        say("Uploading " + path + "…");
        pump();
      } else if (msg.type === "ack") {
        acked = msg.received;
        progress.value = file.size ? acked / file.size : 1;
        pump();
      } else if (msg.type === "done") {
        finished = true;
        progress.value = 1;
        say(msg.message, "ok");
        refreshListing();
      } else if (msg.type === "error") {
        finished = true;
        say(msg.message, "error");
        if (msg.status === 409 && /already exists/.test(msg.message)) offerReplace(form, file, status);
      }
    };
    ws.onclose = () => {
      button.disabled = false;
      if (!finished) say("The connection closed before the upload finished.", "error");
    };
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
