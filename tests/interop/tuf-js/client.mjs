#!/usr/bin/env node
// client.mjs - a stock TUF client (tuf-js's Updater, pinned in package.json)
// run against metadata published by `boltseal ota publish`, for the interop
// tests (tests/integration/tufjs.py runs it).
//
//   node client.mjs --metadata-url URL --targets-url URL --root FILE
//                   --cache DIR [--target NAME --out DIR] [--timeout SEC]
//
// DIR is the client's metadata cache. FILE is copied to DIR/root.json only
// when DIR has no root.json yet, so a second run with the same DIR goes on
// from the trust the client stored (e.g. an old root updating across a
// root rotation). Runs updater.refresh(); with --target also
// getTargetInfo(NAME) and downloadTarget() to OUT/<NAME, URI-encoded>.
//
// Prints exactly one JSON line on stdout:
//   {"ok":true,"root_version":N,"timestamp_version":N,"snapshot_version":N,
//    "targets_version":N,"target":null|{"name":S,"length":N,"sha256":HEX,
//    "path":S}}                                         exit 0
//   {"ok":false,"error":"<ErrorClass>: <message>"}      exit 1
// Versions are read back from the files the updater left in DIR (null when
// a file is missing). The whole run is bounded by --timeout (default 30 s);
// past it the error class is "TimeoutError". Details go to stderr only.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const DEFAULT_TIMEOUT_SEC = 30;
let done = false;

function emit(obj, code) {
  if (done) return;
  done = true;
  // fs.writeSync: the line is out before process.exit, whatever stdout is.
  fs.writeSync(1, JSON.stringify(obj) + '\n');
  process.exit(code);
}

function fail(err) {
  const cls = (err && (err.constructor?.name || err.name)) || 'Error';
  const msg = err && err.message !== undefined ? err.message : String(err);
  if (err && err.stack) process.stderr.write(`${err.stack}\n`);
  emit({ ok: false, error: `${cls}: ${String(msg).replace(/\s+/g, ' ').trim()}` }, 1);
}

class UsageError extends Error { name = 'UsageError'; }
class TimeoutError extends Error { name = 'TimeoutError'; }
class TargetNotFoundError extends Error { name = 'TargetNotFoundError'; }

function readVersion(dir, role) {
  try {
    const data = JSON.parse(fs.readFileSync(path.join(dir, `${role}.json`), 'utf8'));
    const v = data?.signed?.version;
    return Number.isInteger(v) ? v : null;
  } catch {
    return null;
  }
}

async function sha256File(file) {
  const h = crypto.createHash('sha256');
  for await (const chunk of fs.createReadStream(file)) h.update(chunk);
  return h.digest('hex');
}

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'metadata-url': { type: 'string' },
        'targets-url': { type: 'string' },
        root: { type: 'string' },
        cache: { type: 'string' },
        target: { type: 'string' },
        out: { type: 'string' },
        timeout: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  for (const opt of ['metadata-url', 'targets-url', 'root', 'cache']) {
    if (!values[opt]) throw new UsageError(`--${opt} is required`);
  }
  if (values.target !== undefined && !values.out) {
    throw new UsageError('--out is required with --target');
  }
  let timeoutSec = DEFAULT_TIMEOUT_SEC;
  if (values.timeout !== undefined) {
    timeoutSec = Number(values.timeout);
    if (!Number.isFinite(timeoutSec) || timeoutSec <= 0) {
      throw new UsageError(`bad --timeout ${values.timeout}`);
    }
  }
  // Left referenced on purpose: even a promise that never settles ends in
  // a JSON line, not in a silent exit.
  setTimeout(() => {
    fail(new TimeoutError(`no result within ${timeoutSec} s`));
  }, timeoutSec * 1000);

  // This client only talks to the test's own servers: never through a
  // proxy. @npmcli/agent reads these variables when it is first loaded,
  // hence the dynamic import below.
  for (const k of Object.keys(process.env)) {
    if (['http_proxy', 'https_proxy', 'proxy', 'no_proxy', 'all_proxy'].includes(k.toLowerCase())) {
      delete process.env[k];
    }
  }
  const { Updater } = await import('tuf-js');

  const cache = path.resolve(values.cache);
  fs.mkdirSync(cache, { recursive: true });
  const trusted = path.join(cache, 'root.json');
  if (!fs.existsSync(trusted)) {
    fs.copyFileSync(values.root, trusted);
  }
  let out = null;
  if (values.out) {
    out = path.resolve(values.out);
    fs.mkdirSync(out, { recursive: true });
  }

  const updater = new Updater({
    metadataBaseUrl: values['metadata-url'],
    targetBaseUrl: values['targets-url'],
    metadataDir: cache,
    targetDir: out ?? cache,
    // Fail fast and deterministically: one attempt per request, and no
    // request may outlive the overall timeout.
    config: { fetchTimeout: Math.ceil(timeoutSec * 1000), fetchRetries: 0 },
  });
  await updater.refresh();

  let target = null;
  if (values.target !== undefined) {
    const info = await updater.getTargetInfo(values.target);
    if (!info) throw new TargetNotFoundError(`target ${values.target} not found`);
    // Same naming as tuf-js's own generateTargetPath: no path traversal.
    const dest = path.join(out, encodeURIComponent(info.path));
    await updater.downloadTarget(info, dest);
    target = {
      name: info.path,
      length: fs.statSync(dest).size,
      sha256: await sha256File(dest),
      path: dest,
    };
  }

  emit({
    ok: true,
    root_version: readVersion(cache, 'root'),
    timestamp_version: readVersion(cache, 'timestamp'),
    snapshot_version: readVersion(cache, 'snapshot'),
    targets_version: readVersion(cache, 'targets'),
    target,
  }, 0);
}

main().catch(fail);
