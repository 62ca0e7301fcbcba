#!/usr/bin/env node
// cri.js: a small CRI (Kubernetes Container Runtime Interface, runtime.v1)
// client, standing in for crictl (which Debian 12 does not ship).
//
// CLI: one JSON request in, one JSON response out.
//
//   node cri.js [--socket PATH] [--timeout SECONDS] [--proto FILE.pb] METHOD [REQUEST]
//
//   METHOD   a RuntimeService or ImageService method name (RunPodSandbox,
//            CreateContainer, ExecSync, ListImages, ...; case-insensitive) or
//            a crictl-like alias (see ALIASES below); `methods` lists them.
//   REQUEST  the request message as JSON text, `@FILE` to read a file, or `-`
//            for stdin; default `{}`.
//
// The response is printed to stdout as JSON (2-space indent). On a gRPC
// error, {"error":{"code":N,"codeName":"...","details":"..."}} goes to stderr
// and the exit status is 1 (2 for usage errors).
//
// JSON conventions (same field names as the .proto and crictl's config files):
//   * field names are snake_case (keepCase), e.g. runtime_handler, pod_sandbox_id;
//   * map fields (annotations, labels, sysctls, ...) may be given as plain
//     objects {"k":"v"} or as the wire form [{"key":"k","value":"v"}];
//     responses always render them as plain objects;
//   * enums are strings ("NODE", "CONTAINER_RUNNING"), 64-bit ints are strings,
//     unset fields are filled with defaults;
//   * bytes fields (ExecSync stdout/stderr) are rendered as UTF-8 strings.
//
// The CRI descriptor comes from the containerd binary (see extract-proto.js)
// unless --proto / $CRI_PROTO names a pre-extracted FileDescriptorSet.
//
// Environment: CRI_SOCKET (default /run/containerd/containerd.sock),
// CRI_TIMEOUT (seconds, default 120), CRI_PROTO, CRI_CONTAINERD_BINARY.
//
// Module use:
//   const { CriClient } = require('./cri');
//   const cri = new CriClient({ socket: '/tmp/x/containerd.sock' });
//   const { pod_sandbox_id } = await cri.call('RunPodSandbox', { config, runtime_handler: 'flox' });
//   cri.close();
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { extract } = require('./extract-proto');

const PACKAGE = 'runtime.v1';
const SERVICES = ['RuntimeService', 'ImageService'];

// crictl-like short names.
const ALIASES = {
  version: 'Version',
  info: 'Status',
  runp: 'RunPodSandbox',
  stopp: 'StopPodSandbox',
  rmp: 'RemovePodSandbox',
  inspectp: 'PodSandboxStatus',
  pods: 'ListPodSandbox',
  create: 'CreateContainer',
  start: 'StartContainer',
  stop: 'StopContainer',
  rm: 'RemoveContainer',
  ps: 'ListContainers',
  inspect: 'ContainerStatus',
  exec: 'ExecSync',
  stats: 'ListContainerStats',
  images: 'ListImages',
  inspecti: 'ImageStatus',
  pull: 'PullImage',
  rmi: 'RemoveImage',
  imagefsinfo: 'ImageFsInfo',
};

const LOADER_OPTIONS = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

function loadDescriptorSet({ proto, containerdBinary } = {}) {
  const file = proto || process.env.CRI_PROTO;
  if (file) return fs.readFileSync(file);
  return extract({ binary: containerdBinary || process.env.CRI_CONTAINERD_BINARY || undefined, pkg: PACKAGE });
}

// Index of message descriptors by full name, including nested types, used to
// translate map fields between {k: v} objects and [{key, value}] arrays.
function buildTypeIndex(packageDefinition) {
  // protobufjs (fromDescriptor -> toDescriptor) leaks a nested map entry's
  // `mapEntry: true` option onto its parent message, so map-ness is only
  // trusted for nested types; `mapEntries` records those.
  const index = new Map();
  const mapEntries = new Set();
  const add = (fullName, desc, nested) => {
    index.set(fullName, desc);
    if (nested && desc.options && desc.options.mapEntry) mapEntries.add(fullName);
    for (const n of desc.nestedType || []) add(`${fullName}.${n.name}`, n, true);
  };
  for (const [name, def] of Object.entries(packageDefinition)) {
    if (def && def.format && def.format.startsWith('Protocol Buffer 3 DescriptorProto')) add(name, def.type, false);
  }
  index.mapEntries = mapEntries;
  return index;
}

function resolveType(index, scope, typeName) {
  if (!typeName) return null;
  if (typeName.startsWith('.')) return index.has(typeName.slice(1)) ? typeName.slice(1) : null;
  let s = scope;
  for (;;) {
    const candidate = s ? `${s}.${typeName}` : typeName;
    if (index.has(candidate)) return candidate;
    if (!s) return null;
    const dot = s.lastIndexOf('.');
    s = dot < 0 ? '' : s.slice(0, dot);
  }
}

function isPlainObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

// direction 'in': plain objects -> [{key,value}] for map fields.
// direction 'out': [{key,value}] -> plain objects; Buffers -> UTF-8 strings.
function transform(index, typeFullName, value, direction) {
  if (!isPlainObject(value)) return value;
  const desc = index.get(typeFullName);
  if (!desc) return value;
  const out = {};
  for (const [k, v] of Object.entries(value)) {
    const field = (desc.field || []).find((f) => f.name === k);
    if (!field || field.type !== 'TYPE_MESSAGE' || v === null || v === undefined) {
      out[k] = direction === 'out' && Buffer.isBuffer(v) ? v.toString('utf8') : v;
      continue;
    }
    const fieldType = resolveType(index, typeFullName, field.typeName);
    const fieldDesc = fieldType && index.get(fieldType);
    const isMap = field.label === 'LABEL_REPEATED' && index.mapEntries.has(fieldType);
    if (isMap) {
      const valueField = (fieldDesc.field || []).find((f) => f.name === 'value');
      const valueType = valueField && valueField.type === 'TYPE_MESSAGE'
        ? resolveType(index, fieldType, valueField.typeName) : null;
      const conv = (x) => (valueType ? transform(index, valueType, x, direction) : x);
      if (direction === 'in') {
        const entries = Array.isArray(v) ? v.map((e) => [e.key, e.value]) : Object.entries(v);
        out[k] = entries.map(([key, val]) => ({ key, value: conv(val) }));
      } else {
        const obj = {};
        const entries = Array.isArray(v) ? v.map((e) => [e.key, e.value]) : Object.entries(v);
        for (const [key, val] of entries) obj[key] = conv(val);
        out[k] = obj;
      }
    } else if (Array.isArray(v)) {
      out[k] = v.map((x) => transform(index, fieldType, x, direction));
    } else {
      out[k] = transform(index, fieldType, v, direction);
    }
  }
  if (direction === 'out') {
    for (const [k, v] of Object.entries(out)) if (Buffer.isBuffer(v)) out[k] = v.toString('utf8');
  }
  return out;
}

class CriClient {
  // options: socket, timeoutMs (per call deadline), proto, containerdBinary
  constructor(options = {}) {
    this.socket = options.socket || process.env.CRI_SOCKET || '/run/containerd/containerd.sock';
    this.timeoutMs = options.timeoutMs || Number(process.env.CRI_TIMEOUT || 120) * 1000;
    const set = loadDescriptorSet(options);
    const packageDefinition = protoLoader.loadFileDescriptorSetFromBuffer(set, LOADER_OPTIONS);
    this.typeIndex = buildTypeIndex(packageDefinition);
    const loaded = grpc.loadPackageDefinition(packageDefinition);
    const pkg = PACKAGE.split('.').reduce((o, p) => o[p], loaded);
    const address = this.socket.startsWith('unix:') ? this.socket : `unix://${path.resolve(this.socket)}`;
    this.clients = {};
    this.methods = {}; // MethodName -> {service, def}
    for (const service of SERVICES) {
      const Ctor = pkg[service];
      if (!Ctor) throw new Error(`service ${PACKAGE}.${service} not in descriptor`);
      this.clients[service] = new Ctor(address, grpc.credentials.createInsecure());
      for (const [name, def] of Object.entries(Ctor.service)) {
        if (!this.methods[name]) this.methods[name] = { service, def };
      }
    }
  }

  // Resolve a method name, alias or case-insensitive spelling.
  resolveMethod(name) {
    if (this.methods[name]) return name;
    if (ALIASES[name]) return ALIASES[name];
    const lower = name.toLowerCase();
    if (ALIASES[lower]) return ALIASES[lower];
    const hit = Object.keys(this.methods).find((m) => m.toLowerCase() === lower);
    if (hit) return hit;
    throw new Error(`unknown CRI method "${name}" (try: methods)`);
  }

  listMethods() {
    const rev = {};
    for (const [a, m] of Object.entries(ALIASES)) (rev[m] = rev[m] || []).push(a);
    return Object.entries(this.methods).map(([name, { service, def }]) => ({
      method: name,
      service: `${PACKAGE}.${service}`,
      streaming: Boolean(def.requestStream || def.responseStream),
      aliases: rev[name] || [],
    }));
  }

  // Unary call. Resolves to a plain JSON-able object; rejects with the gRPC
  // error (err.code, err.details).
  call(method, request = {}, { timeoutMs } = {}) {
    const name = this.resolveMethod(method);
    const { service, def } = this.methods[name];
    if (def.requestStream || def.responseStream) {
      return Promise.reject(new Error(`${name} is a streaming method; not supported`));
    }
    const reqType = `${PACKAGE}.${def.requestType.type.name}`;
    const resType = `${PACKAGE}.${def.responseType.type.name}`;
    const req = transform(this.typeIndex, reqType, request, 'in');
    const deadline = new Date(Date.now() + (timeoutMs || this.timeoutMs));
    const client = this.clients[service];
    return new Promise((resolve, reject) => {
      client[name](req, { deadline }, (err, res) => {
        if (err) reject(err);
        else resolve(transform(this.typeIndex, resType, res, 'out'));
      });
    });
  }

  close() {
    for (const c of Object.values(this.clients)) c.close();
  }
}

function errorJson(err) {
  const codeName = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code);
  return { error: { code: err.code, codeName, details: err.details || err.message } };
}

function usage(stream) {
  stream.write(
    'usage: cri.js [--socket PATH] [--timeout SECONDS] [--proto FILE.pb] [--containerd-binary PATH]\n' +
    '              METHOD [REQUEST-JSON | @FILE | -]\n' +
    '       cri.js [--socket PATH] methods\n' +
    'METHOD: a CRI RuntimeService/ImageService method (RunPodSandbox, CreateContainer, StartContainer,\n' +
    '        ExecSync, ContainerStatus, StopContainer, RemoveContainer, StopPodSandbox,\n' +
    '        RemovePodSandbox, ListContainers, ListPodSandbox, ListImages, Version, ...)\n' +
    '        or an alias: ' + Object.keys(ALIASES).join(' ') + '\n');
}

async function main(argv) {
  const opts = {};
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inlineVal = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    const val = () => (inlineVal !== undefined ? inlineVal : argv[++i]);
    if (rest.length === 0 && flag === '--socket') opts.socket = val();
    else if (rest.length === 0 && flag === '--timeout') opts.timeoutMs = Number(val()) * 1000;
    else if (rest.length === 0 && flag === '--proto') opts.proto = val();
    else if (rest.length === 0 && flag === '--containerd-binary') opts.containerdBinary = val();
    else if (rest.length === 0 && (a === '-h' || a === '--help')) { usage(process.stdout); return 0; }
    else rest.push(a);
  }
  if (rest.length < 1 || rest.length > 2) { usage(process.stderr); return 2; }
  const [method, reqArg] = rest;
  let client;
  try {
    client = new CriClient(opts);
  } catch (e) {
    process.stderr.write(`cri.js: ${e.message}\n`);
    return 2;
  }
  try {
    if (method === 'methods') {
      process.stdout.write(JSON.stringify(client.listMethods(), null, 2) + '\n');
      return 0;
    }
    let text = '{}';
    if (reqArg === '-') text = fs.readFileSync(0, 'utf8');
    else if (reqArg !== undefined && reqArg.startsWith('@')) text = fs.readFileSync(reqArg.slice(1), 'utf8');
    else if (reqArg !== undefined) text = reqArg;
    let request;
    try {
      request = JSON.parse(text.trim() === '' ? '{}' : text);
    } catch (e) {
      process.stderr.write(`cri.js: request is not valid JSON: ${e.message}\n`);
      return 2;
    }
    let name;
    try {
      name = client.resolveMethod(method);
    } catch (e) {
      process.stderr.write(`cri.js: ${e.message}\n`);
      return 2;
    }
    try {
      const res = await client.call(name, request);
      process.stdout.write(JSON.stringify(res, null, 2) + '\n');
      return 0;
    } catch (err) {
      process.stderr.write(JSON.stringify(errorJson(err)) + '\n');
      return 1;
    }
  } finally {
    client.close();
  }
}

module.exports = { CriClient, ALIASES, errorJson, main, transform };

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => { process.exitCode = code; },
    (e) => { process.stderr.write(`cri.js: ${e.stack || e}\n`); process.exitCode = 1; });
}
