#!/usr/bin/env node
// verify.mjs - a second, independent verifier of boltseal's command tokens
// (docs/commands.md): panva/jose's jwtVerify (version pinned in
// package.json / package-lock.json), run by tests/integration/josejs.py.
//
//   node verify.mjs --key PUB.pem --alg ES256|EdDSA --token TOKEN
//                   [--audience A] [--issuer I] [--subject S]
//                   [--current-date UNIX] [--timeout SEC]
//
// PUB.pem is the signing key's SubjectPublicKeyInfo PEM (importSPKI). The
// token must carry exactly --alg (algorithms: [alg]); the claims are checked
// with clockTolerance 0 against --current-date (seconds since the epoch)
// or, without it, the clock.
//
// Prints exactly one JSON line on stdout:
//   {"ok":true,"header":{...},"payload":{...}}          exit 0
//   {"ok":false,"error":"<code>: <message>"}            exit 1
// <code> is the error's ERR_* code: jose's (e.g.
// ERR_JWS_SIGNATURE_VERIFICATION_FAILED, ERR_JWT_CLAIM_VALIDATION_FAILED,
// ERR_JWT_EXPIRED, ERR_JOSE_ALG_NOT_ALLOWED) or Node's; else the error's class
// name (UsageError, TimeoutError, Error for e.g. an unreadable key file).
// The whole run is bounded by --timeout (default 20 s). Details go to
// stderr only.

import fs from 'node:fs';
import { parseArgs } from 'node:util';

const DEFAULT_TIMEOUT_SEC = 20;
let done = false;

function emit(obj, code) {
  if (done) return;
  done = true;
  // fs.writeSync: the line is out before process.exit, whatever stdout is.
  fs.writeSync(1, JSON.stringify(obj) + '\n');
  process.exit(code);
}

function fail(err) {
  const tag = (err && typeof err.code === 'string' && err.code.startsWith('ERR_'))
    ? err.code
    : ((err && (err.constructor?.name || err.name)) || 'Error');
  const msg = err && err.message !== undefined ? err.message : String(err);
  if (err && err.stack) process.stderr.write(`${err.stack}\n`);
  emit({ ok: false, error: `${tag}: ${String(msg).replace(/\s+/g, ' ').trim()}` }, 1);
}

class UsageError extends Error { name = 'UsageError'; }
class TimeoutError extends Error { name = 'TimeoutError'; }

async function main() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        key: { type: 'string' },
        alg: { type: 'string' },
        token: { type: 'string' },
        audience: { type: 'string' },
        issuer: { type: 'string' },
        subject: { type: 'string' },
        'current-date': { type: 'string' },
        timeout: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  for (const opt of ['key', 'alg', 'token']) {
    if (!values[opt]) throw new UsageError(`--${opt} is required`);
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

  const options = { algorithms: [values.alg], clockTolerance: 0 };
  for (const opt of ['audience', 'issuer', 'subject']) {
    if (values[opt] !== undefined) options[opt] = values[opt];
  }
  if (values['current-date'] !== undefined) {
    const t = Number(values['current-date']);
    if (!Number.isInteger(t) || t < 0) {
      throw new UsageError(`bad --current-date ${values['current-date']}`);
    }
    options.currentDate = new Date(t * 1000);
  }

  const { importSPKI, jwtVerify } = await import('jose');
  const pem = fs.readFileSync(values.key, 'utf8');
  const key = await importSPKI(pem, values.alg);
  const { payload, protectedHeader } = await jwtVerify(values.token, key, options);
  emit({ ok: true, header: protectedHeader, payload }, 0);
}

main().catch(fail);
