#!/usr/bin/env node
// decrypt.mjs - a second, independent decrypter of the data keys boltseal
// delivers to vehicles as JWE (EnvelopeService/GenerateDataKeyForVehicle,
// RFC 7516 compact serialization): panva/jose's compactDecrypt (version
// pinned in package.json / package-lock.json), run by
// tests/integration/josejs.py.
//
//   node decrypt.mjs --key PRIV.pem --jwe JWE
//                    [--alg ECDH-ES+A256KW] [--enc A256GCM] [--timeout SEC]
//
// PRIV.pem is the recipient's private key as a PKCS#8 PEM (importPKCS8). The
// JWE must carry exactly --alg (keyManagementAlgorithms: [alg]) and --enc
// (contentEncryptionAlgorithms: [enc]); the defaults are boltseal's pair.
//
// Prints exactly one JSON line on stdout:
//   {"ok":true,"header":{...},"plaintext_hex":"..."}      exit 0
//   {"ok":false,"error":"<code>: <message>"}             exit 1
// header is the JWE Protected Header as jose parsed it. <code> is the
// error's ERR_* code: jose's (e.g. ERR_JWE_DECRYPTION_FAILED,
// ERR_JWE_INVALID, ERR_JOSE_ALG_NOT_ALLOWED) or Node's; else the error's
// class name (UsageError, TimeoutError, Error for e.g. an unreadable key
// file). The whole run is bounded by --timeout (default 20 s). Details go to
// stderr only.

import fs from 'node:fs';
import { parseArgs } from 'node:util';

const DEFAULT_TIMEOUT_SEC = 20;
const DEFAULT_ALG = 'ECDH-ES+A256KW';
const DEFAULT_ENC = 'A256GCM';
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
        jwe: { type: 'string' },
        alg: { type: 'string' },
        enc: { type: 'string' },
        timeout: { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(e.message);
  }
  for (const opt of ['key', 'jwe']) {
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

  const alg = values.alg ?? DEFAULT_ALG;
  const enc = values.enc ?? DEFAULT_ENC;
  const { importPKCS8, compactDecrypt } = await import('jose');
  const pem = fs.readFileSync(values.key, 'utf8');
  const key = await importPKCS8(pem, alg);
  const { plaintext, protectedHeader } = await compactDecrypt(values.jwe, key, {
    keyManagementAlgorithms: [alg],
    contentEncryptionAlgorithms: [enc],
  });
  emit({ ok: true, header: protectedHeader, plaintext_hex: Buffer.from(plaintext).toString('hex') },
    0);
}

main().catch(fail);
