// The page's Socket.IO link: live events as DOM events, liveness pings, STOP and silence.
/* global io */

const PING_MS = 500; // the server withholds the controller heartbeat without these

export const socket = io({ transports: ["websocket"], reconnectionDelayMax: 2000 });

const EVENTS = ["pressure", "status", "alarm", "session", "beat"];
for (const name of EVENTS) {
  socket.on(name, (data) => window.dispatchEvent(new CustomEvent(`bfr:${name}`, { detail: data })));
}
socket.on("connect", () => {
  socket.emit("ui_alive");
  window.dispatchEvent(new CustomEvent("bfr:link", { detail: { connected: true } }));
});
socket.on("disconnect", () => {
  window.dispatchEvent(new CustomEvent("bfr:link", { detail: { connected: false } }));
});

// Sent from the page's own timer: a hung page stops pinging and the cuff is deflated.
setInterval(() => {
  if (socket.connected) socket.emit("ui_alive");
}, PING_MS);

export function on(name, listener) {
  window.addEventListener(`bfr:${name}`, (event) => listener(event.detail));
}

// STOP goes both ways at once: the socket is fastest, the POST still works if the socket broke.
export function sendStop() {
  if (socket.connected) socket.timeout(1000).emit("stop", () => {});
  return fetch("/api/stop", { method: "POST", keepalive: true }).catch(() => null);
}

export function sendSilence() {
  if (socket.connected) {
    socket.timeout(1000).emit("silence", () => {});
    return Promise.resolve();
  }
  return fetch("/api/silence", { method: "POST" }).catch(() => null);
}

export function sendSessionInput(data) {
  return new Promise((resolve) => {
    socket.timeout(2000).emit("session_input", data, (err, reply) => {
      resolve(err ? { ok: false, error: "timeout" } : reply);
    });
  });
}
