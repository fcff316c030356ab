'use strict';
// sockjs-node peer for bench/run: /echo, /broadcast and /close on 127.0.0.1:PORT.
// Usage: node sockjs_node.js PORT
const http = require('http');
const sockjs = require('sockjs');

const port = parseInt(process.argv[2], 10);
if (!(port > 0)) {
  console.error('usage: node sockjs_node.js PORT');
  process.exit(2);
}

const options = {
  sockjs_url: 'http://127.0.0.1/sockjs.js',
  log: () => {}, // sockjs-node logs every request by default
};

const echo = sockjs.createServer(options);
echo.on('connection', (conn) => {
  conn.on('data', (message) => conn.write(message));
});

const everyone = new Set();
const broadcast = sockjs.createServer(options);
broadcast.on('connection', (conn) => {
  everyone.add(conn);
  conn.on('close', () => everyone.delete(conn));
  conn.on('data', (message) => {
    for (const other of everyone) other.write(message);
  });
});

const close = sockjs.createServer(options);
close.on('connection', (conn) => conn.close(3000, 'Go away!'));

const server = http.createServer();
echo.installHandlers(server, { prefix: '/echo' });
broadcast.installHandlers(server, { prefix: '/broadcast' });
close.installHandlers(server, { prefix: '/close' });
server.listen({ port, host: '127.0.0.1', backlog: 1024 });
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
