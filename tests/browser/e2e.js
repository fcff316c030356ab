// Browser side of tests/test_browser.py.
//
// Loaded before sockjs.min.js.  It exposes window.e2e, a handful of
// promise-returning helpers that the Python test drives with
// page.evaluate().  Every wait has its own timeout and rejects with an
// Error that says what it was waiting for and what it had seen, because
// Playwright's evaluate() would otherwise wait forever.
(function () {
  'use strict';

  // sockjs-client takes window.WebSocket when it loads, so wrapping it here
  // (before sockjs.min.js) lets a test see the native close event of the
  // socket the client used: wasClean is true only once the server answered
  // the client's close frame, which is how a test can tell that a client
  // close reached the server.
  var NativeWebSocket = window.WebSocket;
  var nativeSockets = [];
  function RecordingWebSocket(url, protocols) {
    var ws = protocols === undefined
      ? new NativeWebSocket(url) : new NativeWebSocket(url, protocols);
    var record = {url: String(url), closed: null};
    nativeSockets.push(record);
    ws.addEventListener('close', function (event) {
      record.closed = {
        code: event.code, reason: event.reason, wasClean: event.wasClean
      };
    });
    return ws;
  }
  RecordingWebSocket.prototype = NativeWebSocket.prototype;
  ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'].forEach(function (name) {
    RecordingWebSocket[name] = NativeWebSocket[name];
  });
  window.WebSocket = RecordingWebSocket;

  var sockets = {};
  var nextId = 1;

  function describeClose(event) {
    return {code: event.code, reason: event.reason, wasClean: event.wasClean};
  }

  // Resolves with the next message of socket `entry`, or rejects after
  // timeoutMs (or when the socket closes first).
  function nextMessage(entry, timeoutMs, what) {
    if (entry.messages.length) {
      return Promise.resolve(entry.messages.shift());
    }
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        entry.waiter = null;
        reject(new Error('timed out after ' + timeoutMs + ' ms waiting for ' +
                         what + '; socket closed: ' + JSON.stringify(entry.closed)));
      }, timeoutMs);
      entry.waiter = {
        message: function (data) {
          clearTimeout(timer);
          entry.waiter = null;
          resolve(data);
        },
        close: function (closed) {
          clearTimeout(timer);
          entry.waiter = null;
          reject(new Error('socket closed ' + JSON.stringify(closed) +
                           ' while waiting for ' + what));
        }
      };
    });
  }

  function waitForClose(entry, timeoutMs) {
    if (entry.closed) {
      return Promise.resolve(entry.closed);
    }
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        reject(new Error('timed out after ' + timeoutMs +
                         ' ms waiting for the close event; readyState ' +
                         entry.sock.readyState));
      }, timeoutMs);
      entry.closeWaiters.push(function (closed) {
        clearTimeout(timer);
        resolve(closed);
      });
    });
  }

  window.e2e = {
    // Opens a SockJS connection to url, limited to `transport` when given.
    // Resolves once it opens or closes:
    //   {id, opened, transport, openMs, closed, candidates}
    // where candidates lists the transports the client judged usable in
    // this browser for this url (private state of sockjs-client 1.6.1,
    // read only to explain a refusal).
    open: function (url, transport, timeoutMs) {
      var options = transport ? {transports: [transport]} : {};
      var started = performance.now();
      var sock = new SockJS(url, null, options);
      var id = nextId++;
      var entry = {
        sock: sock, messages: [], waiter: null, closed: null,
        closeWaiters: [], candidates: null, openMs: null
      };
      sockets[id] = entry;
      var connect = sock._connect;
      sock._connect = function () {
        if (entry.candidates === null && Array.isArray(sock._transports)) {
          entry.candidates = sock._transports.map(function (t) {
            return t.transportName;
          });
        }
        return connect.apply(sock, arguments);
      };
      sock.onmessage = function (event) {
        if (entry.waiter) {
          entry.waiter.message(event.data);
        } else {
          entry.messages.push(event.data);
        }
      };
      return new Promise(function (resolve, reject) {
        var settled = false;
        function settle() {
          if (!settled) {
            settled = true;
            clearTimeout(timer);
            resolve({
              id: id, opened: entry.openMs !== null, transport: sock.transport,
              openMs: entry.openMs, closed: entry.closed,
              candidates: entry.candidates
            });
          }
        }
        var timer = setTimeout(function () {
          settled = true;
          reject(new Error('timed out after ' + timeoutMs + ' ms opening ' + url +
                           ' with ' + transport + '; readyState ' + sock.readyState +
                           '; candidates ' + JSON.stringify(entry.candidates)));
        }, timeoutMs);
        sock.onopen = function () {
          entry.openMs = performance.now() - started;
          settle();
        };
        sock.onclose = function (event) {
          entry.closed = describeClose(event);
          if (entry.waiter) {
            entry.waiter.close(entry.closed);
          }
          entry.closeWaiters.splice(0).forEach(function (f) { f(entry.closed); });
          settle();
        };
      });
    },

    // Sends each message and waits for its echo before sending the next.
    // Resolves with one result per message: {data, rtt} (rtt in ms), or
    // {error} when no echo came within timeoutMs; messages that arrive
    // after their wait ended are added to that result as `late`.
    echo: function (id, messages, timeoutMs) {
      var entry = sockets[id];
      var results = [];
      var chain = Promise.resolve();
      messages.forEach(function (message, index) {
        chain = chain.then(function () {
          if (entry.messages.length && results.length) {
            results[results.length - 1].late = entry.messages.splice(0);
          }
          var started = performance.now();
          if (entry.sock.readyState === SockJS.OPEN) {
            entry.sock.send(message);
          }
          return nextMessage(entry, timeoutMs, 'the echo of message ' + index +
                             ' (' + message.length + ' UTF-16 units)')
            .then(function (data) {
              results.push({data: data, rtt: performance.now() - started});
            }, function (error) {
              results.push({error: error.message});
            });
        });
      });
      return chain.then(function () {
        return results;
      });
    },

    // Sends all messages in one go (one JavaScript turn), then collects as
    // many messages.  Resolves {received, ms}; on timeout rejects with the
    // count received so far.
    burst: function (id, messages, timeoutMs) {
      var entry = sockets[id];
      var started = performance.now();
      messages.forEach(function (message) { entry.sock.send(message); });
      var received = [];
      function collect() {
        if (received.length === messages.length) {
          return {received: received, ms: performance.now() - started};
        }
        return nextMessage(entry, timeoutMs, 'burst message ' + received.length +
                           ' of ' + messages.length + ' (last received: ' +
                           JSON.stringify(received.slice(-1)) + ')')
          .then(function (data) {
            received.push(data);
            return collect();
          });
      }
      return collect();
    },

    // The next message on socket id.
    receive: function (id, timeoutMs) {
      return nextMessage(sockets[id], timeoutMs, 'a message');
    },

    // Closes socket id from the client side (code 1000) and resolves with
    // the close event the client reports.
    close: function (id, timeoutMs) {
      var entry = sockets[id];
      entry.sock.close();
      return waitForClose(entry, timeoutMs);
    },

    // Resolves with the close event of socket id (for server closes).
    closed: function (id, timeoutMs) {
      return waitForClose(sockets[id], timeoutMs);
    },

    // Messages that arrived on socket id and were not consumed yet.
    pending: function (id) {
      return sockets[id].messages.slice();
    },

    // The native WebSockets created so far: [{url, closed}].
    nativeSockets: function () {
      return JSON.parse(JSON.stringify(nativeSockets));
    }
  };
}());
