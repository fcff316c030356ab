// sockjs-node 0.3.24, the reference SockJS server, for tests/test_client.py: serves the
// test services on 127.0.0.1, a port the kernel chooses, and prints "listening <port>".
"use strict";
const http = require("http");
const sockjs = require("sockjs");

const quiet = { log: function () {}, sockjs_url: "/sockjs.js" };
// What no service handles: 404 (installHandlers keeps this listener for such URLs).
const server = http.createServer(function (req, res) {
  res.writeHead(404, { "Content-Type": "text/plain" });
  res.end("Not found\n");
});
// Every Cookie header the server saw, for the cookie_needed service to report.
const cookies = [];
function recordCookie(req) {
  if (req.headers.cookie) cookies.push(req.url.split("/").pop() + " " + req.headers.cookie);
}

function service(prefix, options, onConnection) {
  const s = sockjs.createServer(Object.assign({}, quiet, options));
  s.on("connection", onConnection);
  s.installHandlers(server, { prefix: prefix });
}

function echo(conn) {
  conn.on("data", function (message) {
    conn.write(message);
  });
}

service("/echo", {}, echo);
service("/close", {}, function (conn) {
  conn.close(3000, "Go away!");
});
// The first message is "<code> <reason>": the server closes with them.
service("/closewith", {}, function (conn) {
  conn.on("data", function (message) {
    const space = message.indexOf(" ");
    conn.close(Number(message.slice(0, space)), message.slice(space + 1));
  });
});
service("/disabled_websocket_echo", { websocket: false }, echo);
service("/heartbeat", { heartbeat_delay: 100 }, echo);
service("/cookie_needed_echo", { jsessionid: true }, function (conn) {
  conn.on("data", function (message) {
    conn.write(message === "cookies?" ? JSON.stringify(cookies) : message);
  });
});

// After installHandlers, which wraps the listeners it finds: this one sees every request.
server.on("request", recordCookie);
server.on("upgrade", recordCookie);

server.listen(0, "127.0.0.1", function () {
  process.stdout.write("listening " + server.address().port + "\n");
});
