// A terminal in the instance page: xterm.js talking to the dashboard's terminal socket, which
// relays an exec or the console to LXD (see hosts/views/terminal_socket.py for the protocol).
// Output is acknowledged once written to the terminal, so a slow page holds the command back
// instead of piling bytes up in the server.
(function () {
  "use strict";
  // Output is acknowledged every ACK_EVERY bytes while it streams in, otherwise ACK_DELAY ms
  // after it was written: typing costs no acknowledgement per key, and the server's window
  // (1 MiB) never fills from interactive output.
  const ACK_EVERY = 64 * 1024;
  const ACK_DELAY = 100;

  const panel = document.getElementById("terminal-panel");
  if (!panel || !window.WebSocket || !window.Terminal || !window.FitAddon) return;
  panel.hidden = false;
  const form = document.getElementById("terminal-form");
  const screen = document.getElementById("terminal");
  const status = document.getElementById("terminal-status");
  const closeButton = document.getElementById("terminal-close");
  let session = null;

  function say(text, kind) {
    status.textContent = text;
    status.className = kind || "";
  }

  // A relative URL (this page's own host, and wss:// when the page came over https), so it
  // works the same behind a TLS-terminating proxy.
  function socketUrl(path) {
    const url = new URL(path, location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    return url.href;
  }

  function open(mode) {
    if (session) session.dispose();
    screen.textContent = "";
    const term = new Terminal({ cursorBlink: true, scrollback: 5000, convertEol: false });
    const fit = new FitAddon.FitAddon();
    term.loadAddon(fit);
    term.open(screen);
    fit.fit();
    const ws = new WebSocket(socketUrl(panel.dataset.ws));
    ws.binaryType = "arraybuffer";
    const encoder = new TextEncoder();
    let written = 0;
    let acked = 0;
    let timer = null;
    let ended = false;
    const field = (n) => form.elements[n].value;

    const showSize = () => {
      panel.dataset.cols = term.cols;
      panel.dataset.rows = term.rows;
    };
    showSize();
    const acknowledge = () => {
      clearTimeout(timer);
      timer = null;
      if (written > acked && ws.readyState === WebSocket.OPEN) {
        acked = written;
        ws.send(JSON.stringify({ type: "ack", written: written }));
      }
    };
    const end = (text, kind) => {
      if (ended) return;
      ended = true;
      say(text, kind);
      term.write("\r\n\x1b[" + (kind === "error" ? "31" : "2") + "m[" + text + "]\x1b[0m\r\n");
      closeButton.hidden = true;
    };

    ws.onopen = () => {
      ws.send(JSON.stringify({
        type: "start", mode: mode, command: field("command"), user: field("user"),
        group: field("group"), cwd: field("cwd"), cols: term.cols, rows: term.rows,
      }));
      say("Starting…");
    };
    ws.onmessage = (event) => {
      if (typeof event.data !== "string") {
        const bytes = new Uint8Array(event.data);
        term.write(bytes, () => {
          written += bytes.length;
          if (written - acked >= ACK_EVERY) acknowledge();
          else if (timer === null) timer = setTimeout(acknowledge, ACK_DELAY);
        });
        return;
      }
      const msg = JSON.parse(event.data);
      if (msg.type === "started") {
        say((mode === "console" ? "Attached to " : "Running ") + msg.target, "ok");
        closeButton.hidden = false;
        term.focus();
      } else if (msg.type === "notice") {
        term.write("\x1b[2m[" + msg.message + "]\x1b[0m\r\n");
      } else if (msg.type === "exit") {
        const code = msg.code === null || msg.code === undefined ? "" : " Exit code " + msg.code + ".";
        end((msg.message + code).trim(), msg.code === 0 || msg.code === null ? "ok" : "error");
      } else if (msg.type === "error") {
        end(msg.message, "error");
      }
    };
    ws.onclose = () => {
      if (!ended) end("The connection to the dashboard closed.", "error");
      if (session && session.ws === ws) session = null;
    };

    term.onData((data) => {
      if (ws.readyState === WebSocket.OPEN && !ended) ws.send(encoder.encode(data));
    });
    term.onBinary((data) => {
      if (ws.readyState !== WebSocket.OPEN || ended) return;
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      ws.send(bytes);
    });
    term.onResize((size) => {
      showSize();
      if (ws.readyState === WebSocket.OPEN && !ended) {
        ws.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }));
      }
    });
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(screen);

    session = {
      ws: ws,
      close() {
        end("Closed.", "");
        observer.disconnect();
        if (ws.readyState <= WebSocket.OPEN) ws.close();
      },
      dispose() {
        this.close();
        term.dispose();
      },
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const mode = event.submitter && event.submitter.dataset.mode === "console" ? "console" : "exec";
    open(mode);
  });
  closeButton.addEventListener("click", () => {
    if (session) session.close();
  });
  // Leaving the page closes the socket, and with it the command (LXD kills it).
  window.addEventListener("pagehide", () => {
    if (session) session.close();
  });
})();
