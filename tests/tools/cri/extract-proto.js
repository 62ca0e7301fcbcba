#!/usr/bin/env node
// extract-proto.js: recover the CRI runtime.v1 API descriptor from a
// containerd binary.
//
// The CRI api.proto is not published on npm, but Go protobuf code embeds
// every .proto file as a gzipped FileDescriptorProto. This scans the binary
// for gzip streams, keeps the one whose FileDescriptorProto has
// `package = "runtime.v1"`, and wraps it as a FileDescriptorSet (field 1),
// which @grpc/proto-loader's loadFileDescriptorSetFromBuffer() accepts.
//
//   node extract-proto.js [--binary /usr/bin/containerd] [--package runtime.v1] [-o OUT.pb]
//
// Without -o the FileDescriptorSet is written to stdout. As a module:
//   require('./extract-proto').extract({binary, pkg}) -> Buffer (FileDescriptorSet)
'use strict';

const fs = require('fs');
const zlib = require('zlib');

const DEFAULT_BINARY = '/usr/bin/containerd';
const DEFAULT_PACKAGE = 'runtime.v1';

function readVarint(buf, pos) {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const b = buf[pos++];
    result += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [result, pos];
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

function encodeVarint(n) {
  const out = [];
  while (n > 0x7f) {
    out.push((n % 128) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

// Return {name, package} of a FileDescriptorProto, or null if the bytes do not
// parse as one (most gzip streams in a binary are something else).
function describeFileDescriptor(buf) {
  let pos = 0;
  const info = { name: null, package: null };
  try {
    while (pos < buf.length) {
      let key;
      [key, pos] = readVarint(buf, pos);
      const field = Math.floor(key / 8);
      const wire = key & 7;
      if (wire === 2) {
        let len;
        [len, pos] = readVarint(buf, pos);
        if (pos + len > buf.length) return null;
        if (field === 1) info.name = buf.toString('utf8', pos, pos + len);
        if (field === 2) info.package = buf.toString('utf8', pos, pos + len);
        pos += len;
      } else if (wire === 0) {
        [, pos] = readVarint(buf, pos);
      } else if (wire === 1) {
        pos += 8;
      } else if (wire === 5) {
        pos += 4;
      } else {
        return null;
      }
      if (info.name !== null && info.package !== null) return info;
    }
  } catch (e) {
    return null;
  }
  return info.name !== null ? info : null;
}

// Find every gzip stream that decodes to a FileDescriptorProto.
function* fileDescriptors(bin) {
  let off = 0;
  for (;;) {
    off = bin.indexOf(Buffer.from([0x1f, 0x8b, 0x08]), off);
    if (off < 0) return;
    let raw = null;
    try {
      // Node ignores trailing bytes after the gzip member; cap the input so a
      // false positive near the start of a huge binary stays cheap.
      raw = zlib.gunzipSync(bin.subarray(off, Math.min(bin.length, off + (4 << 20))));
    } catch (e) {
      raw = null;
    }
    if (raw) {
      const info = describeFileDescriptor(raw);
      if (info) yield { offset: off, raw, ...info };
    }
    off += 3;
  }
}

function extract({ binary = DEFAULT_BINARY, pkg = DEFAULT_PACKAGE } = {}) {
  const bin = fs.readFileSync(binary);
  const found = [];
  for (const fd of fileDescriptors(bin)) {
    if (fd.package === pkg) found.push(fd);
  }
  if (found.length === 0) {
    throw new Error(`no FileDescriptorProto for package ${pkg} found in ${binary}`);
  }
  // Prefer the CRI api.proto itself (it declares the services); if a binary
  // ever carries several copies, take the largest.
  found.sort((a, b) => b.raw.length - a.raw.length);
  const fd = found[0].raw;
  // FileDescriptorSet { repeated FileDescriptorProto file = 1; }
  return Buffer.concat([Buffer.from([0x0a]), encodeVarint(fd.length), fd]);
}

module.exports = { extract, fileDescriptors, DEFAULT_BINARY, DEFAULT_PACKAGE };

if (require.main === module) {
  const args = process.argv.slice(2);
  let binary = process.env.CRI_CONTAINERD_BINARY || DEFAULT_BINARY;
  let pkg = DEFAULT_PACKAGE;
  let out = null;
  let list = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--binary') binary = args[++i];
    else if (a === '--package') pkg = args[++i];
    else if (a === '-o' || a === '--output') out = args[++i];
    else if (a === '--list') list = true;
    else if (a === '-h' || a === '--help') {
      process.stdout.write(
        'usage: extract-proto.js [--binary /usr/bin/containerd] [--package runtime.v1] [-o OUT.pb] [--list]\n');
      process.exit(0);
    } else {
      process.stderr.write(`extract-proto.js: unknown argument ${a}\n`);
      process.exit(2);
    }
  }
  try {
    if (list) {
      for (const fd of fileDescriptors(fs.readFileSync(binary))) {
        process.stdout.write(`${fd.offset}\t${fd.package}\t${fd.name}\t${fd.raw.length}\n`);
      }
      process.exit(0);
    }
    const set = extract({ binary, pkg });
    if (out) fs.writeFileSync(out, set);
    else process.stdout.write(set);
  } catch (e) {
    process.stderr.write(`extract-proto.js: ${e.message}\n`);
    process.exit(1);
  }
}
