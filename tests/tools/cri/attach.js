#!/usr/bin/env node
// attach.js: the client side of a CRI streaming URL (what `kubectl attach`
// / `kubectl exec` do through kubelet), for tests.
//
//   node attach.js URL [--no-stdin] [--timeout SECONDS] < input
//
// URL is the `url` of a CRI Attach (or Exec) response: the runtime's own
// streaming server, e.g. http://127.0.0.1:PORT/attach/TOKEN.  The request
// that made it decides which streams exist (stdin/stdout/stderr/tty).
// attach.js speaks the websocket flavour of the Kubernetes remote-command
// protocol (subprotocol v4.channel.k8s.io: one binary message per chunk, its
// first byte the stream: 0 stdin, 1 stdout, 2 stderr, 3 status), sends its
// own stdin as stream 0 (unless --no-stdin), writes streams 1 and 2 to its
// stdout and stderr, and closes the connection when its stdin ends; with
// `stdin_once` the runtime then closes the container's stdin.  Exit status:
// 0, or 1 when the server reports a failure on stream 3 or the connection
// fails.  No dependencies beyond Node.js (>= 18).
'use strict';

const http = require('http');
const crypto = require('crypto');

function usage() {
  process.stderr.write('usage: attach.js URL [--no-stdin] [--timeout SECONDS] < input\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let url = null;
let sendStdin = true;
let timeoutS = 60;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--no-stdin') sendStdin = false;
  else if (args[i] === '--timeout') timeoutS = Number(args[++i]);
  else if (!url) url = args[i];
  else usage();
}
if (!url || !(timeoutS > 0)) usage();

// A client frame: FIN, the opcode, masked payload.
function frame(opcode, payload) {
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.alloc(2);
    head[1] = 0x80 | len;
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  head[0] = 0x80 | opcode;
  const mask = crypto.randomBytes(4);
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i % 4];
  return Buffer.concat([head, mask, body]);
}

let failed = false;
const timer = setTimeout(() => {
  process.stderr.write(`attach.js: timed out after ${timeoutS}s\n`);
  process.exit(1);
}, timeoutS * 1000);

const key = crypto.randomBytes(16).toString('base64');
const u = new URL(url);
const req = http.request({
  host: u.hostname,
  port: u.port,
  path: u.pathname + u.search,
  method: 'GET',
  headers: {
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': key,
    'Sec-WebSocket-Protocol': 'v4.channel.k8s.io',
    Origin: `http://${u.host}`,
  },
});

req.on('response', (res) => {
  let body = '';
  res.on('data', (d) => (body += d));
  res.on('end', () => {
    process.stderr.write(`attach.js: no websocket upgrade: HTTP ${res.statusCode} ${body.trim()}\n`);
    process.exit(1);
  });
});
req.on('error', (e) => {
  process.stderr.write(`attach.js: ${e.message}\n`);
  process.exit(1);
});

req.on('upgrade', (res, socket, head) => {
  const want = crypto.createHash('sha1').update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
  if (res.headers['sec-websocket-accept'] !== want) {
    process.stderr.write('attach.js: bad Sec-WebSocket-Accept\n');
    process.exit(1);
  }
  let buf = head && head.length ? Buffer.from(head) : Buffer.alloc(0);
  let closing = false;

  const finish = () => {
    clearTimeout(timer);
    process.exitCode = failed ? 1 : 0;
  };
  const onMessage = (opcode, payload) => {
    if (opcode === 0x8) {
      if (!closing) socket.write(frame(0x8, Buffer.alloc(0)));
      closing = true;
      socket.end();
      return;
    }
    if (opcode === 0x9) {
      socket.write(frame(0xa, payload));
      return;
    }
    if ((opcode !== 0x1 && opcode !== 0x2) || payload.length === 0) return;
    const ch = payload[0];
    const data = payload.subarray(1);
    if (ch === 1) process.stdout.write(data);
    else if (ch === 2) process.stderr.write(data);
    else if (ch === 3 && data.length) {
      // a metav1.Status; Success means the stream ended well
      let st = null;
      try {
        st = JSON.parse(data.toString('utf8'));
      } catch (e) {
        /* not JSON: report as is */
      }
      if (!st || st.status !== 'Success') {
        failed = true;
        process.stderr.write(`attach.js: ${data.toString('utf8')}\n`);
      }
    }
  };
  const parse = () => {
    for (;;) {
      if (buf.length < 2) return;
      const opcode = buf[0] & 0x0f;
      let len = buf[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        off = 10;
      }
      if (buf[1] & 0x80) off += 4; // servers do not mask, but tolerate it
      if (buf.length < off + len) return;
      let payload = buf.subarray(off, off + len);
      if (buf[1] & 0x80) {
        const mask = buf.subarray(off - 4, off);
        payload = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]));
      }
      buf = buf.subarray(off + len);
      onMessage(opcode, payload);
    }
  };
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    parse();
  });
  socket.on('end', finish);
  socket.on('close', finish);
  socket.on('error', (e) => {
    if (!closing) {
      failed = true;
      process.stderr.write(`attach.js: ${e.message}\n`);
    }
  });

  const closeNow = () => {
    if (closing) return;
    closing = true;
    socket.write(frame(0x8, Buffer.from([0x03, 0xe8]))); // 1000: normal closure
  };
  if (!sendStdin) return; // read until the server closes
  process.stdin.on('data', (d) => socket.write(frame(0x2, Buffer.concat([Buffer.from([0]), d]))));
  process.stdin.on('end', closeNow);
});

req.end();
