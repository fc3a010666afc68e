#!/usr/bin/env node
// Calls the API from pages on other origins in Debian's Chromium (playwright-core), for
// tests/integration/test_cors.py. One argument, a JSON object:
//
//   {"api": "http://127.0.0.1:PORT",            the server (https:// with a self-signed certificate is fine)
//    "allowed": "http://127.0.0.1:P1/",         a page on an origin in STACCATO_CORS_ORIGINS
//    "denied": "http://127.0.0.1:P2/",          a page on an origin that is not
//    "token": "...",                            an access token (sent as Authorization: Bearer)
//    "song": "...",                             a song with audio, for a Range request on its stream
//    "upload_song": "...",                      a song without audio, to upload wav_base64 to
//    "wav_base64": "...",
//    "chromium": "/usr/bin/chromium",
//    "timeout_ms": 30000}
//
// On the allowed page: a JSON call (GET /songs?limit=1, reading X-Total-Count), a Range request on the stream
// (reading Content-Range and the bytes) and an upload (PUT /songs/{id}/audio), all with fetch(...,
// {credentials: 'include'}) and the Authorization header, so that each is preflighted. On the denied page: the
// same JSON call, which the browser must refuse (fetch rejects). Every step waits on its promise; nothing sleeps.
// Prints one JSON object on standard output: {"allowed": {"json", "range", "upload"}, "denied": {"json"}}; a
// step that fails exits with status 1 and says which on standard error.
'use strict';

const { launch } = require('./chromium');

const config = JSON.parse(process.argv[2]);
const timeout = config.timeout_ms || 30000;

// Runs in the page: the calls of an allowed origin.
async function allowedCalls(c) {
  const auth = { Authorization: 'Bearer ' + c.token };
  const out = {};
  let r = await fetch(c.api + '/songs?limit=1', { credentials: 'include', headers: auth });
  out.json = { status: r.status, total: r.headers.get('X-Total-Count'), body: await r.json() };
  r = await fetch(c.api + '/songs/' + c.song + '/stream', {
    credentials: 'include',
    headers: Object.assign({ Range: 'bytes=0-9' }, auth),
  });
  const bytes = new Uint8Array(await r.arrayBuffer());
  out.range = {
    status: r.status,
    contentRange: r.headers.get('Content-Range'),
    acceptRanges: r.headers.get('Accept-Ranges'),
    length: bytes.length,
  };
  const wav = Uint8Array.from(atob(c.wav_base64), (ch) => ch.charCodeAt(0));
  r = await fetch(c.api + '/songs/' + c.upload_song + '/audio', {
    method: 'PUT',
    credentials: 'include',
    headers: Object.assign({ 'Content-Type': 'audio/wav' }, auth),
    body: wav,
  });
  out.upload = { status: r.status, body: await r.json() };
  return out;
}

// Runs in the page: the call of an origin the server does not allow; the browser must make fetch reject.
async function deniedCall(c) {
  try {
    const r = await fetch(c.api + '/songs?limit=1', {
      credentials: 'include',
      headers: { Authorization: 'Bearer ' + c.token },
    });
    return { rejected: false, status: r.status };
  } catch (e) {
    return { rejected: true, error: e.name };
  }
}

async function main() {
  const browser = await launch(config, timeout);
  const result = {};
  let step = 'start';
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    context.setDefaultTimeout(timeout);
    const page = await context.newPage();
    step = 'allowed page';
    await page.goto(config.allowed, { waitUntil: 'domcontentloaded', timeout });
    step = 'allowed calls';
    result.allowed = await page.evaluate(allowedCalls, config);
    step = 'denied page';
    await page.goto(config.denied, { waitUntil: 'domcontentloaded', timeout });
    step = 'denied call';
    result.denied = { json: await page.evaluate(deniedCall, config) };
  } catch (e) {
    process.stderr.write('cors_browser.js: ' + step + ': ' + e.message + '\n');
    process.stdout.write(JSON.stringify(result) + '\n');
    await browser.close();
    process.exit(1);
  }
  await browser.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write('cors_browser.js: ' + e.stack + '\n');
  process.exit(1);
});
