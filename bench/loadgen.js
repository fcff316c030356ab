'use strict';
// Load generator for bench/run: one scenario against one server on 127.0.0.1.
//
// Usage: node loadgen.js '<json config>'
//   config: {port, server_pid, clk_tck, mode: "sockjs"|"raw", scenario, params, deadline_s,
//            ws_client: "lite"|"ws"}
// Prints one JSON line: {scenario, phases: [...], errors: N, error_samples: [...]}.
// Every phase records wall seconds, server CPU seconds (utime+stime from /proc/PID/stat),
// the load generator's own CPU seconds and what the rest of the machine used, so bench.py
// can report rates both ways and show whether anything else disturbed the run.
//
// Every answer is checked: each echo must equal the oldest message still due on its
// session, every broadcast must reach every session in order.  Any mismatch, unexpected
// close or timeout is counted in `errors`, which makes bench/run exit non-zero.
//
// WebSockets use the minimal client below (LiteWs) or npm `ws` (NpmWs); the SockJS HTTP
// transports use the small keep-alive HTTP/1.1 client below (HttpConn, one request at a
// time per connection), which costs far less CPU per request than http.request.

const fs = require('fs');
const net = require('net');
const { performance } = require('perf_hooks');
const WebSocket = require('ws');

const cfg = JSON.parse(process.argv[2]);
const PORT = cfg.port;
const HOST = '127.0.0.1';
const CLK_TCK = cfg.clk_tck || 100;
const RAW = cfg.mode === 'raw';
const P = cfg.params || {};
// How long to wait for echoes still due, sessions to open, and the like.
const WAIT_MS = (P.wait_s || 30) * 1000;

// ---------------------------------------------------------------- bookkeeping

let errorCount = 0;
const errorSamples = [];
function fail(what) {
  errorCount += 1;
  if (errorSamples.length < 20) errorSamples.push(String(what).slice(0, 300));
}

const phases = [];
let finished = false;
function finish(extra) {
  if (finished) return;
  finished = true;
  const out = Object.assign(
    { scenario: cfg.scenario, phases, errors: errorCount, error_samples: errorSamples },
    extra || {},
  );
  process.stdout.write(JSON.stringify(out) + '\n', () => process.exit(0));
}

setTimeout(() => {
  fail(`scenario did not finish within its deadline of ${cfg.deadline_s}s`);
  finish({ timed_out: true });
}, (cfg.deadline_s || 120) * 1000);

function cpuSeconds(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK; // utime + stime
  } catch (e) {
    return NaN;
  }
}

function rssKiB(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) : NaN;
  } catch (e) {
    return NaN;
  }
}

// Busy CPU seconds of the whole machine (all CPUs) and seconds stolen by the hypervisor:
// what is neither server nor load generator is other work that disturbed the run.
function machineSeconds() {
  try {
    const f = fs.readFileSync('/proc/stat', 'latin1').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / CLK_TCK, steal: (f[7] || 0) / CLK_TCK };
  } catch (e) {
    return { busy: NaN, steal: NaN };
  }
}

function snap() {
  return {
    t: performance.now(),
    srv: cpuSeconds(cfg.server_pid),
    gen: cpuSeconds(process.pid),
    machine: machineSeconds(),
  };
}

function phase(name, a, b, extra) {
  const p = Object.assign(
    {
      name,
      wall_s: (b.t - a.t) / 1000,
      server_cpu_s: b.srv - a.srv,
      gen_cpu_s: b.gen - a.gen,
      other_cpu_s: b.machine.busy - a.machine.busy - (b.srv - a.srv) - (b.gen - a.gen),
      steal_s: b.machine.steal - a.machine.steal,
    },
    extra,
  );
  phases.push(p);
  return p;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate, ms, what) {
  const end = performance.now() + ms;
  while (!predicate()) {
    if (performance.now() > end) {
      fail(`timed out after ${ms} ms waiting for ${what}`);
      return false;
    }
    await sleep(5);
  }
  return true;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// Runs make(i) for i in [0, n) with at most `concurrency` pending at once; each
// make() returns a Promise.  Resolves with the results in order.
async function bounded(n, concurrency, make) {
  const results = new Array(n);
  let next = 0;
  async function worker() {
    while (next < n) {
      const i = next++;
      results[i] = await make(i);
    }
  }
  const workers = [];
  for (let k = 0; k < Math.min(concurrency, n); k++) workers.push(worker());
  await Promise.all(workers);
  return results;
}

// ---------------------------------------------------------------- messages

let idCounter = 0;
const runTag = `${process.pid.toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
function newSessionId() {
  idCounter += 1;
  return `${runTag}x${idCounter.toString(36)}`;
}
function serverId() {
  return String(Math.floor(Math.random() * 1000)).padStart(3, '0');
}

const MSG_SIZE = P.msg_size || 32;
function makeMessage(tag, seq) {
  return `${tag}:${seq}:`.padEnd(MSG_SIZE, 'x');
}

// Splits one SockJS frame into messages; returns false for frames other than o/h/a.
function sockjsFrame(sess, frame) {
  const type = frame.charCodeAt(0);
  if (type === 97 /* a */) {
    let messages;
    if (frame.charCodeAt(1) === 91 && frame.charCodeAt(2) === 34 && frame.endsWith('"]') && frame.indexOf('\\') < 0) {
      // The load generator's own messages hold no quote or backslash: split, no JSON.parse.
      const inner = frame.slice(3, -2);
      messages = inner.indexOf('"') < 0 ? [inner] : inner.split('","');
    } else {
      try {
        messages = JSON.parse(frame.slice(1));
      } catch (e) {
        fail(`bad a-frame: ${frame.slice(0, 80)}`);
        return;
      }
    }
    for (let i = 0; i < messages.length; i++) sess.onMessage(messages[i]);
  } else if (type === 111 /* o */) {
    sess.onOpen();
  } else if (type === 104 /* h */) {
    // heartbeat (and the xhr_streaming prelude)
  } else if (type === 99 /* c */) {
    sess.onServerClose(frame);
  } else {
    fail(`unknown frame: ${frame.slice(0, 80)}`);
  }
}

// ---------------------------------------------------------------- websocket sessions

// Two WebSocket clients with one small interface (see WsSession): `lite`, the default,
// is the minimal RFC 6455 client below on a plain net.Socket; `ws` is npm ws, kept as a
// cross-check (--ws-client ws).  With ws the generator spends about as much CPU per
// message, and more per handshake, as sockjs-node does, so against the fastest peer it
// would share the bottleneck; lite costs a fraction of that.
//
// Both send the frames of one turn of the event loop in one socket write, masked with
// the all-zero key (RFC 6455 5.3 leaves the key to the client; with it the payload goes
// as is, which is also what ws does when generateMask leaves the key zero-filled).
// Messages here are ASCII, so text is written and read as latin1.

// RFC 6455 1.3: the key is a nonce to the server; the answer must be this hash of it.
const WS_KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const WS_ACCEPT = require('crypto')
  .createHash('sha1')
  .update(WS_KEY + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11')
  .digest('base64');

function encodeFrames(texts) {
  let size = 0;
  for (let i = 0; i < texts.length; i++) size += texts[i].length + (texts[i].length < 126 ? 6 : 8);
  const buf = Buffer.allocUnsafe(size);
  let o = 0;
  for (let i = 0; i < texts.length; i++) {
    const p = texts[i];
    buf[o++] = 0x81; // FIN + text
    if (p.length < 126) {
      buf[o++] = 0x80 | p.length;
    } else {
      buf[o++] = 0x80 | 126;
      buf.writeUInt16BE(p.length, o);
      o += 2;
    }
    buf.writeUInt32BE(0, o); // masking key
    o += 4;
    o += buf.latin1Write(p, o);
  }
  return buf;
}

const READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

const CLOSE_FRAME = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]); // masked close, 1000

class LiteWs {
  // h: {open(), text(string), closed(why or null when we asked for it)}
  constructor(path, h) {
    this.h = h;
    this.state = 'connecting';
    this.closing = false;
    this.head = '';
    this.pending = null; // unparsed bytes
    this.fragments = null;
    // onread: every read lands in one shared buffer and is parsed before the callback
    // returns (only an incomplete frame is copied out): no Buffer and no stream event per
    // read, which is most of what a small frame costs the generator.
    const sock = net.connect({
      port: PORT,
      host: HOST,
      onread: { buffer: READ_BUFFER, callback: (n, buf) => this._data(buf.subarray(0, n)) },
    });
    this.sock = sock;
    sock.setNoDelay(true);
    sock.on('connect', () => {
      sock.write(
        `GET ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${WS_KEY}\r\n` +
          `Sec-WebSocket-Version: 13\r\nOrigin: http://${HOST}:${PORT}\r\n\r\n`,
        'latin1',
      );
    });
    sock.on('data', (d) => this._data(d));
    sock.on('error', (e) => this._gone(`socket error: ${e.message}`));
    sock.on('close', () => this._gone('connection closed'));
  }

  _gone(why) {
    if (this.state === 'closed') return;
    const expected = this.closing;
    this.state = 'closed';
    this.sock.destroy();
    this.h.closed(expected ? null : why);
  }

  _protocolError(why) {
    fail(`websocket: ${why}`);
    this._gone(why);
  }

  _data(d) {
    if (this.state === 'connecting') {
      this.head += d.latin1Slice(0, d.length);
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.head.slice(0, end);
      if (!/^HTTP\/1\.1 101 /.test(head) || head.indexOf(WS_ACCEPT) < 0) {
        this._protocolError(`handshake refused: ${head.split('\r\n')[0]}`);
        return;
      }
      const rest = Buffer.byteLength(this.head.slice(end + 4), 'latin1');
      this.head = '';
      this.state = 'open';
      this.h.open();
      if (rest === 0) return;
      d = d.subarray(d.length - rest);
    }
    if (this.state === 'closed') return;
    let buf = d;
    if (this.pending !== null) {
      buf = Buffer.concat([this.pending, d]);
      this.pending = null;
    }
    let o = 0;
    while (this.state !== 'closed') {
      if (buf.length - o < 2) break;
      const b0 = buf[o];
      const b1 = buf[o + 1];
      if (b1 & 0x80) return this._protocolError('masked frame from the server');
      let len = b1 & 0x7f;
      let start = o + 2;
      if (len === 126) {
        if (buf.length - o < 4) break;
        len = buf.readUInt16BE(o + 2);
        start = o + 4;
      } else if (len === 127) {
        if (buf.length - o < 10) break;
        len = Number(buf.readBigUInt64BE(o + 2));
        start = o + 10;
      }
      if (buf.length < start + len) break;
      this._frame(b0 & 0x80, b0 & 0x0f, buf, start, start + len);
      o = start + len;
    }
    if (o < buf.length && this.state !== 'closed') this.pending = Buffer.from(buf.subarray(o));
  }

  _frame(fin, opcode, buf, start, end) {
    if (opcode === 1 || opcode === 0) {
      const text = buf.latin1Slice(start, end);
      if (!fin) {
        this.fragments = (this.fragments || '') + text;
      } else if (this.fragments !== null) {
        const whole = this.fragments + text;
        this.fragments = null;
        this.h.text(whole);
      } else {
        this.h.text(text);
      }
    } else if (opcode === 8) {
      if (!this.closing) {
        this.closing = true;
        this.sock.write(CLOSE_FRAME);
        const code = end - start >= 2 ? buf.readUInt16BE(start) : 1005;
        this._gone(`server sent close ${code}`);
      } else {
        this._gone(null); // the answer to our close: done
      }
    } else if (opcode === 9) {
      const payload = buf.subarray(start, end);
      const pong = Buffer.alloc(6 + payload.length);
      pong[0] = 0x8a;
      pong[1] = 0x80 | payload.length;
      payload.copy(pong, 6);
      this.sock.write(pong);
    } else if (opcode !== 10) {
      this._protocolError(`unexpected opcode ${opcode}`);
    }
  }

  sendTexts(texts) {
    if (this.state !== 'open' || this.closing) return false;
    this.sock.write(encodeFrames(texts));
    return true;
  }

  close() {
    if (this.state !== 'open' || this.closing) return;
    this.closing = true;
    this.sock.write(CLOSE_FRAME);
  }

  terminate() {
    this.closing = true;
    this._gone(null);
  }
}

const noMask = () => {}; // leaves the key zero-filled: ws then sends the payload as is

class NpmWs {
  constructor(path, h) {
    this.closing = false;
    let gone = false;
    const done = (why) => {
      if (gone) return;
      gone = true;
      h.closed(this.closing ? null : why);
    };
    const ws = new WebSocket(`ws://${HOST}:${PORT}${path}`, {
      perMessageDeflate: false,
      skipUTF8Validation: true,
      generateMask: noMask,
      handshakeTimeout: 30000,
    });
    this.ws = ws;
    ws.on('open', () => h.open());
    ws.on('message', (data) => h.text(data.toString('latin1')));
    ws.on('error', (e) => done(`websocket error: ${e.message}`));
    ws.on('close', (code) => done(`closed by the server (${code})`));
  }

  sendTexts(texts) {
    if (this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws._socket.write(encodeFrames(texts));
    return true;
  }

  close() {
    this.closing = true;
    this.ws.close(1000);
  }

  terminate() {
    this.closing = true;
    this.ws.terminate();
  }
}

const WsClient = cfg.ws_client === 'ws' ? NpmWs : LiteWs;

// One SockJS session over a WebSocket (or, against a raw server, just the WebSocket).
class WsSession {
  constructor(prefix) {
    this.tag = newSessionId();
    this.path = RAW ? prefix : `${prefix}/${serverId()}/${this.tag}/websocket`;
    this.opened = false;
    this.closed = false;
    this.expectClose = false;
    this.outbox = null;
    this.onMessage = () => {};
    this._onOpen = null;
    this._onClose = null;
  }

  open() {
    return new Promise((resolve) => {
      this._onOpen = resolve;
      this.conn = new WsClient(this.path, {
        open: () => {
          if (RAW) this.onOpen();
        },
        text: (text) => {
          if (RAW) this.onMessage(text);
          else sockjsFrame(this, text);
        },
        closed: (why) => {
          this.closed = true;
          if (why !== null && !this.expectClose) fail(`websocket ${this.tag}: ${why}`);
          this._settle(false);
          if (this._onClose) this._onClose();
        },
      });
    });
  }

  _settle(ok) {
    if (this._onOpen) {
      const resolve = this._onOpen;
      this._onOpen = null;
      resolve(ok ? this : null);
    }
  }

  onOpen() {
    this.opened = true;
    this._settle(true);
  }

  onServerClose(frame) {
    if (!this.expectClose) fail(`session closed by the server: ${frame}`);
  }

  // Messages sent in one turn of the event loop leave in one socket write.
  send(message) {
    if (this.outbox === null) {
      this.outbox = [];
      process.nextTick(flushOutbox, this);
    }
    this.outbox.push(RAW ? message : `["${message}"]`);
  }

  close() {
    this.expectClose = true;
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this._onClose = resolve;
      this.conn.close();
    });
  }
}

function flushOutbox(sess) {
  const texts = sess.outbox;
  sess.outbox = null;
  if (!sess.conn.sendTexts(texts) && !sess.expectClose) fail('send on a websocket that is not open');
}

async function openWsSessions(prefix, n, concurrency) {
  const sessions = await bounded(n, concurrency, async () => {
    const s = new WsSession(prefix);
    return s.open();
  });
  const ok = sessions.filter((s) => s !== null);
  if (ok.length !== n) fail(`opened only ${ok.length} of ${n} websocket sessions`);
  return ok;
}

async function closeAll(sessions) {
  await Promise.race([
    bounded(sessions.length, 500, (i) => sessions[i].close()),
    sleep(WAIT_MS),
  ]);
  for (const s of sessions) if (!s.closed) s.conn.terminate();
}

// Echo bookkeeping shared by every transport: a FIFO of sent messages per session,
// each echo must match the oldest one.
function attachEcho(sess, onEcho) {
  sess.sent = [];
  sess.sentAt = [];
  sess.head = 0;
  sess.seq = 0;
  sess.onMessage = (m) => {
    if (sess.head >= sess.sent.length) {
      fail(`unexpected message on ${sess.tag}: ${String(m).slice(0, 60)}`);
      return;
    }
    const want = sess.sent[sess.head];
    const at = sess.sentAt[sess.head];
    sess.head += 1;
    if (sess.head > 4096) {
      sess.sent = sess.sent.slice(sess.head);
      sess.sentAt = sess.sentAt.slice(sess.head);
      sess.head = 0;
    }
    if (m !== want) fail(`wrong echo on ${sess.tag}: got ${String(m).slice(0, 60)} want ${want}`);
    onEcho(sess, at);
  };
  sess.outstanding = () => sess.sent.length - sess.head;
  sess.sendNext = (now) => {
    const m = makeMessage(sess.tag, sess.seq++);
    sess.sent.push(m);
    sess.sentAt.push(now || 0);
    sess.send(m);
  };
}

async function drain(sessions, ms) {
  return waitFor(() => sessions.every((s) => s.outstanding() === 0), ms, 'echoes to drain');
}

// Pipelined echo for throughput, then a fixed total rate for round-trip percentiles.
async function echoPhases(sessions, label) {
  const window = P.window;
  let running = true;
  let received = 0;
  let latencyMode = false;
  const rtts = [];
  // Each session refills its window in bursts, once a quarter of it has come back: a
  // client that writes once per echo costs the generator about what the echo costs the
  // server, and three quarters of the window still keep the server busy meanwhile.
  const refillAt = window - Math.max(1, Math.floor(window / 4));
  for (const s of sessions) {
    attachEcho(s, (sess, at) => {
      received += 1;
      if (latencyMode) {
        rtts.push(performance.now() - at);
      } else if (running && sess.outstanding() <= refillAt) {
        for (let i = sess.outstanding(); i < window; i++) sess.sendNext();
      }
    });
  }
  for (const s of sessions) for (let i = 0; i < window; i++) s.sendNext();
  await sleep(P.warmup_s * 1000);
  const a = snap();
  const r0 = received;
  await sleep(P.measure_s * 1000);
  const b = snap();
  const r1 = received;
  running = false;
  phase(`${label}throughput`, a, b, { count: r1 - r0, unit: 'messages' });
  await drain(sessions, WAIT_MS);

  // Fixed rate: every millisecond send whatever is due, round-robin over the sessions.
  // First for warmup_s unrecorded (the paths of one message per turn are not those of a
  // saturated server: a JIT compiles them, as the throughput phase's warm-up lets it
  // compile those), then for latency_s recorded.
  latencyMode = true;
  const rate = P.rate;
  let rr = 0;
  const atRate = (due) =>
    new Promise((resolve) => {
      const start = performance.now();
      let sent = 0;
      const timer = setInterval(() => {
        const target = Math.min(due, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
        while (sent < target) {
          sessions[rr].sendNext(performance.now());
          rr = (rr + 1) % sessions.length;
          sent += 1;
        }
        if (sent >= due) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
  await atRate(Math.max(1, Math.round(rate * P.warmup_s)));
  await drain(sessions, WAIT_MS);
  rtts.length = 0;
  const due = Math.max(1, Math.round(rate * P.latency_s));
  const c = snap();
  await atRate(due);
  await drain(sessions, WAIT_MS);
  const d = snap();
  rtts.sort((x, y) => x - y);
  phase(`${label}latency`, c, d, {
    count: rtts.length,
    unit: 'messages',
    rate,
    p50_ms: percentile(rtts, 0.5),
    p99_ms: percentile(rtts, 0.99),
    max_ms: rtts.length ? rtts[rtts.length - 1] : NaN,
  });
  if (rtts.length !== due) fail(`latency phase: ${rtts.length} of ${due} echoes came back`);
}

// ---------------------------------------------------------------- minimal HTTP/1.1 client

class HttpConn {
  constructor() {
    this.sock = null;
    this.busy = false;
  }

  _connect() {
    const sock = net.connect(PORT, HOST);
    sock.setNoDelay(true);
    sock.setEncoding('latin1');
    sock.on('data', (d) => this._data(d));
    sock.on('error', (e) => {
      if (this.busy) this._error(`http ${this.path}: ${e.message}`);
    });
    sock.on('close', () => {
      if (this.sock === sock) this.sock = null;
      if (this.busy) {
        if (this.state === 'body-eof') this._done();
        else this._error(`http ${this.path}: connection closed mid-response`);
      }
    });
    this.sock = sock;
  }

  // onChunk(text) is called with body data as it arrives when streaming; otherwise
  // onDone(status, body) once the response is complete.
  request(method, path, body, { onDone, onChunk, onError }) {
    if (this.busy) throw new Error('HttpConn is busy');
    this.busy = true;
    this.path = path;
    this.onDone = onDone;
    this.onChunk = onChunk || null;
    this.onError = onError || ((m) => fail(m));
    this.buf = '';
    this.body = '';
    this.state = 'head';
    if (!this.sock || this.sock.destroyed) this._connect();
    let req = `${method} ${path} HTTP/1.1\r\nHost: ${HOST}:${PORT}\r\n`;
    if (body !== null) {
      req += `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    } else {
      req += 'Content-Length: 0\r\n\r\n';
    }
    this.sock.write(req, 'latin1');
  }

  _error(message) {
    this.busy = false;
    if (this.sock) this.sock.destroy();
    this.sock = null;
    this.onError(message);
  }

  _emit(text) {
    if (text.length === 0) return;
    if (this.onChunk) this.onChunk(text);
    else this.body += text;
  }

  _done() {
    this.busy = false;
    if (this.closeAfter && this.sock) {
      this.sock.destroy();
      this.sock = null;
    }
    this.onDone(this.status, this.body);
  }

  _data(d) {
    if (!this.busy) return; // stray bytes after a response: ignore
    this.buf += d;
    for (;;) {
      if (this.state === 'head') {
        const end = this.buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const head = this.buf.slice(0, end);
        this.buf = this.buf.slice(end + 4);
        this.status = parseInt(head.slice(9, 12), 10);
        const lower = head.toLowerCase();
        const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
        this.closeAfter = /\r\nconnection:\s*close/.test(lower);
        if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) {
          this.state = 'chunk-size';
        } else if (cl) {
          this.remaining = Number(cl[1]);
          this.state = 'body-length';
        } else if (this.status === 204 || this.status === 304) {
          this.remaining = 0;
          this.state = 'body-length';
        } else {
          this.state = 'body-eof';
          this.closeAfter = true;
        }
      } else if (this.state === 'body-length') {
        const take = Math.min(this.remaining, this.buf.length);
        this._emit(this.buf.slice(0, take));
        this.buf = this.buf.slice(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this._done();
        return;
      } else if (this.state === 'body-eof') {
        this._emit(this.buf);
        this.buf = '';
        return;
      } else if (this.state === 'chunk-size') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return;
        const size = parseInt(this.buf.slice(0, eol), 16);
        this.buf = this.buf.slice(eol + 2);
        if (size === 0) {
          this.state = 'trailer';
        } else {
          this.remaining = size;
          this.state = 'chunk-data';
        }
      } else if (this.state === 'chunk-data') {
        const take = Math.min(this.remaining, this.buf.length);
        this._emit(this.buf.slice(0, take));
        this.buf = this.buf.slice(take);
        this.remaining -= take;
        if (this.remaining > 0) return;
        this.state = 'chunk-crlf';
      } else if (this.state === 'chunk-crlf') {
        if (this.buf.length < 2) return;
        this.buf = this.buf.slice(2);
        this.state = 'chunk-size';
      } else if (this.state === 'trailer') {
        const eol = this.buf.indexOf('\r\n');
        if (eol < 0) return;
        const line = this.buf.slice(0, eol);
        this.buf = this.buf.slice(eol + 2);
        if (line === '') {
          this._done();
          return;
        }
      }
    }
  }

  destroy() {
    this.busy = false;
    if (this.sock) this.sock.destroy();
    this.sock = null;
  }
}

// A SockJS session over xhr_streaming (receive) + xhr_send, or over xhr polling.
class XhrSession {
  constructor(prefix, kind) {
    this.tag = newSessionId();
    this.base = `${prefix}/${serverId()}/${this.tag}`;
    this.kind = kind; // 'xhr_streaming' | 'xhr'
    this.recv = new HttpConn();
    this.sendConn = new HttpConn();
    this.opened = false;
    this.active = true;
    this.queue = [];
    this.sending = false;
    this.lineBuf = '';
    this.onMessage = () => {};
    this.onIdle = null;
    this.receives = 0;
  }

  open() {
    return new Promise((resolve) => {
      this._onOpen = resolve;
      this._receive();
    });
  }

  onOpen() {
    this.opened = true;
    if (this._onOpen) {
      const resolve = this._onOpen;
      this._onOpen = null;
      resolve(this);
    }
  }

  onServerClose(frame) {
    if (this.active) fail(`session closed by the server: ${frame}`);
    this.active = false;
    if (this._onOpen) {
      const resolve = this._onOpen;
      this._onOpen = null;
      resolve(null);
    }
  }

  _lines(text) {
    this.lineBuf += text;
    let nl;
    while ((nl = this.lineBuf.indexOf('\n')) >= 0) {
      const frame = this.lineBuf.slice(0, nl);
      this.lineBuf = this.lineBuf.slice(nl + 1);
      if (frame.length) sockjsFrame(this, frame);
    }
  }

  // Keeps exactly one receiving request open while the session is active.
  _receive() {
    if (!this.active) return;
    this.receives += 1;
    const streaming = this.kind === 'xhr_streaming';
    this.recv.request('POST', `${this.base}/${this.kind}`, null, {
      onChunk: streaming ? (text) => this._lines(text) : null,
      onDone: (status, body) => {
        if (status !== 200) {
          fail(`${this.kind} answered ${status}`);
          this.onServerClose(`status ${status}`);
          return;
        }
        if (!streaming) this._lines(body);
        if (this.lineBuf.length) fail(`${this.kind} response ended mid-frame`);
        this.lineBuf = '';
        this._receive();
      },
      onError: (m) => {
        if (this.active) fail(m);
        this.active = false;
        this.onServerClose('connection error');
      },
    });
  }

  // One xhr_send in flight per session keeps the messages in order.
  send(message) {
    this.queue.push(message);
    if (!this.sending) this._flush();
  }

  _flush() {
    const message = this.queue.shift();
    this.sending = true;
    this.sendConn.request('POST', `${this.base}/xhr_send`, `["${message}"]`, {
      onDone: (status, body) => {
        this.sending = false;
        if (status !== 204 && status !== 200) {
          fail(`xhr_send answered ${status}: ${body.slice(0, 80)}`);
        }
        if (this.queue.length) this._flush();
        else if (this.onIdle) this.onIdle(this);
      },
    });
  }

  close() {
    this.active = false;
    this.recv.destroy();
    this.sendConn.destroy();
  }
}

async function openXhrSessions(prefix, kind, n, concurrency) {
  const sessions = await bounded(n, concurrency, async () => {
    const s = new XhrSession(prefix, kind);
    return s.open();
  });
  const ok = sessions.filter((s) => s !== null);
  if (ok.length !== n) fail(`opened only ${ok.length} of ${n} ${kind} sessions`);
  return ok;
}

// ---------------------------------------------------------------- scenarios

const scenarios = {};

// A: websocket echo, pipelined throughput then round trips at a fixed rate.
scenarios.ws_echo = async () => {
  const t0 = snap();
  const sessions = await openWsSessions('/echo', P.sessions, 200);
  phase('open', t0, snap(), { count: sessions.length, unit: 'sessions' });
  if (sessions.length !== P.sessions) return;
  await echoPhases(sessions, '');
  await closeAll(sessions);
};

// B: xhr_streaming receive + xhr_send echo.
scenarios.xhr_streaming = async () => {
  const t0 = snap();
  const sessions = await openXhrSessions('/echo', 'xhr_streaming', P.sessions, 100);
  phase('open', t0, snap(), { count: sessions.length, unit: 'sessions' });
  if (sessions.length !== P.sessions) return;
  let running = true;
  let received = 0;
  for (const s of sessions) {
    attachEcho(s, (sess) => {
      received += 1;
      if (running) sess.sendNext();
    });
  }
  for (const s of sessions) for (let i = 0; i < P.window; i++) s.sendNext();
  await sleep(P.warmup_s * 1000);
  const a = snap();
  const r0 = received;
  const reopen0 = sessions.reduce((n, s) => n + s.receives, 0);
  await sleep(P.measure_s * 1000);
  const b = snap();
  const r1 = received;
  running = false;
  phase('throughput', a, b, {
    count: r1 - r0,
    unit: 'messages',
    streaming_requests: sessions.reduce((n, s) => n + s.receives, 0) - reopen0,
  });
  await drain(sessions, WAIT_MS);
  for (const s of sessions) s.close();
};

// C: xhr polling cycles: each cycle is one xhr_send and the poll that brings the echo.
scenarios.xhr_polling = async () => {
  const t0 = snap();
  const sessions = await openXhrSessions('/echo', 'xhr', P.sessions, 100);
  phase('open', t0, snap(), { count: sessions.length, unit: 'sessions' });
  if (sessions.length !== P.sessions) return;
  let running = true;
  let cycles = 0;
  for (const s of sessions) {
    attachEcho(s, (sess) => {
      cycles += 1;
      if (running) sess.sendNext();
    });
  }
  for (const s of sessions) s.sendNext();
  await sleep(P.warmup_s * 1000);
  const a = snap();
  const c0 = cycles;
  const polls0 = sessions.reduce((n, s) => n + s.receives, 0);
  await sleep(P.measure_s * 1000);
  const b = snap();
  const c1 = cycles;
  running = false;
  phase('throughput', a, b, {
    count: c1 - c0,
    unit: 'cycles',
    polls: sessions.reduce((n, s) => n + s.receives, 0) - polls0,
  });
  await drain(sessions, WAIT_MS);
  for (const s of sessions) s.close();
};

// D: idle capacity: hold many websocket and xhr_streaming sessions open; RSS per session.
scenarios.idle = async () => {
  // Warm the server first (lazy imports, first allocations), so RSS growth is the sessions'.
  const warm = await openWsSessions('/echo', P.warm_sessions, 50);
  let warmEchoes = 0;
  for (const s of warm) attachEcho(s, () => (warmEchoes += 1));
  for (const s of warm) s.sendNext();
  const warmXhr = RAW ? [] : await openXhrSessions('/echo', 'xhr_streaming', P.warm_sessions, 50);
  for (const s of warmXhr) attachEcho(s, () => (warmEchoes += 1));
  for (const s of warmXhr) s.sendNext();
  await waitFor(() => warmEchoes === warm.length + warmXhr.length, WAIT_MS, 'warm-up echoes');
  for (const s of warmXhr) s.close();
  await closeAll(warm);
  await sleep(500);
  const rss0 = rssKiB(cfg.server_pid);
  const a = snap();
  const ws = await openWsSessions('/echo', P.ws_sessions, P.open_concurrency);
  const b = snap();
  await sleep(P.settle_s * 1000);
  const rss1 = rssKiB(cfg.server_pid);
  phase('ws_open', a, b, {
    count: ws.length,
    unit: 'sessions',
    rss_before_kib: rss0,
    rss_after_kib: rss1,
    rss_per_session_kib: (rss1 - rss0) / Math.max(1, ws.length),
  });
  let xhr = [];
  if (!RAW && P.xhr_sessions > 0) {
    const c = snap();
    xhr = await openXhrSessions('/echo', 'xhr_streaming', P.xhr_sessions, P.open_concurrency);
    const d = snap();
    await sleep(P.settle_s * 1000);
    const rss2 = rssKiB(cfg.server_pid);
    phase('xhr_streaming_open', c, d, {
      count: xhr.length,
      unit: 'sessions',
      rss_before_kib: rss1,
      rss_after_kib: rss2,
      rss_per_session_kib: (rss2 - rss1) / Math.max(1, xhr.length),
    });
  }
  // Every held session must still be alive: echo once on a sample of them.
  const sample = [];
  const stride = Math.max(1, Math.floor(ws.length / P.check_sessions));
  for (let i = 0; i < ws.length; i += stride) sample.push(ws[i]);
  const xstride = Math.max(1, Math.floor(xhr.length / P.check_sessions));
  for (let i = 0; i < xhr.length; i += xstride) sample.push(xhr[i]);
  let echoes = 0;
  for (const s of sample) attachEcho(s, () => (echoes += 1));
  for (const s of sample) s.sendNext();
  await waitFor(() => echoes === sample.length, WAIT_MS, 'echoes from held sessions');
  phases.push({ name: 'held_check', count: echoes, expected: sample.length, ws_held: ws.length, xhr_held: xhr.length });
  for (const s of xhr) s.close();
  await closeAll(ws);
};

// E: broadcast fan-out: one sender, every session receives every message.
scenarios.broadcast = async () => {
  const t0 = snap();
  const sessions = await openWsSessions('/broadcast', P.sessions, 200);
  phase('open', t0, snap(), { count: sessions.length, unit: 'sessions' });
  if (sessions.length !== P.sessions) return;
  const n = sessions.length;
  const sender = sessions[0];
  // Every session must receive every message, in order: message k is checked against
  // the string sent as message k, and counted in a ring of per-message delivery counts.
  const ring = 1024; // > window
  const counts = new Int32Array(ring);
  const sent = [];
  let seq = 0;
  let deliveries = 0;
  let running = true;
  let inflight = 0;
  const sendOne = () => {
    const m = makeMessage('b', seq);
    sent.push(m);
    counts[seq % ring] = 0;
    seq += 1;
    inflight += 1;
    sender.send(m);
  };
  for (const s of sessions) {
    s.next = 0;
    s.onMessage = (m) => {
      const k = s.next;
      if (m !== sent[k]) {
        fail(`broadcast wrong or out of order on ${s.tag}: got ${String(m).slice(0, 40)}, want ${sent[k]}`);
        return;
      }
      s.next = k + 1;
      deliveries += 1;
      if (++counts[k % ring] === n) {
        inflight -= 1;
        if (running) sendOne();
      }
    };
  }
  for (let i = 0; i < P.window; i++) sendOne();
  await sleep(P.warmup_s * 1000);
  const a = snap();
  const d0 = deliveries;
  await sleep(P.measure_s * 1000);
  const b = snap();
  const d1 = deliveries;
  running = false;
  phase('throughput', a, b, { count: d1 - d0, unit: 'deliveries', fanout: n });
  await waitFor(() => inflight === 0, WAIT_MS, 'broadcasts to finish');
  for (const s of sessions) {
    if (s.next !== seq) fail(`session ${s.tag} got ${s.next} of ${seq} broadcasts`);
  }
  await closeAll(sessions);
};

// F / G: session set-up: websocket sessions opened (until 'o') and closed, per second;
// by the client (F), or by the server as the session opens (G: /close, c[3000,...]).
async function openAndClose() {
  const s = new WsSession(P.server_closes ? '/close' : '/echo');
  if (!P.server_closes) {
    if ((await s.open()) === null) return false;
    await s.close();
    return true;
  }
  s.expectClose = true;
  let closeFrame = null;
  s.onServerClose = (frame) => {
    closeFrame = frame;
  };
  const closed = new Promise((resolve) => {
    s._onClose = resolve;
  });
  if ((await s.open()) === null) return false;
  await closed;
  // (sockjs-tornado closes the websocket without a "c" frame here: only a wrong one fails.)
  if (closeFrame !== null && !closeFrame.startsWith('c[3000,')) {
    fail(`server-closed session ended with ${closeFrame}, not c[3000,...]`);
  }
  return true;
}

scenarios.setup = async () => {
  let running = true;
  let cycles = 0;
  async function loop() {
    while (running) {
      if (!(await openAndClose())) {
        fail('session set-up failed');
        await sleep(10);
        continue;
      }
      cycles += 1;
    }
  }
  const loops = [];
  for (let i = 0; i < P.concurrency; i++) loops.push(loop());
  await sleep(P.warmup_s * 1000);
  // Then at least warmup_sessions sessions, the same count for every server (a JIT's
  // warm-up is counted in operations, not seconds), for at most warmup_max_s.
  const warmEnd = Date.now() + (P.warmup_max_s || 0) * 1000;
  while (cycles < (P.warmup_sessions || 0) && Date.now() < warmEnd) await sleep(50);
  const a = snap();
  const c0 = cycles;
  await sleep(P.measure_s * 1000);
  const b = snap();
  const c1 = cycles;
  running = false;
  phase('throughput', a, b, { count: c1 - c0, unit: 'sessions' });
  await Promise.race([Promise.all(loops), sleep(WAIT_MS)]);
};

// ---------------------------------------------------------------- main

(async () => {
  const run = scenarios[cfg.scenario];
  if (!run) {
    fail(`unknown scenario ${cfg.scenario}`);
    finish();
    return;
  }
  try {
    await run();
  } catch (e) {
    fail(`scenario crashed: ${e && e.stack ? e.stack : e}`);
  }
  finish();
})();
