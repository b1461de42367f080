// The browser's side of the streamed upload protocol (hosts/views/stream_socket.py), for every
// upload form (files.js, images.js, backups.js): a JSON header, then the bytes of one or more
// files as one stream of binary frames, at most WINDOW ahead of the server's acknowledgements,
// with progress and the server's last word ("done" or "error").
window.streamUpload = function (options) {
  "use strict";
  const FRAME = 1024 * 1024;
  const WINDOW = 4 * FRAME;
  const { socketPath, header, files, status, progress, button } = options;
  const total = files.reduce((sum, f) => sum + f.size, 0);
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + socketPath);
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
    if (pumping) return; // one reader at a time keeps the frames in order
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

  ws.onopen = () => ws.send(JSON.stringify(header));
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "ready") {
      say(options.uploading);
      pump();
    } else if (msg.type === "ack") {
      acked = msg.received;
      progress.value = total ? acked / total : 1;
      if (acked === total && options.unpacking) say(options.unpacking);
      pump();
    } else if (msg.type === "done") {
      finished = true;
      progress.value = 1;
      say(msg.message, "ok");
      if (options.onDone) options.onDone(msg);
    } else if (msg.type === "error") {
      finished = true;
      say(msg.message, "error");
      if (options.onError) options.onError(msg);
    }
  };
  ws.onclose = () => {
    button.disabled = false;
    if (!finished) say("The connection closed before the " + options.what + " finished.", "error");
  };
};
