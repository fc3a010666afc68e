#!/usr/bin/env node
// Drives Debian's Chromium through playwright-core over the API documentation pages of a running server, for
// tests/integration/test_docs.py. One argument, a JSON object:
//
//   {"base": "http://127.0.0.1:PORT",          the server (https:// with a self-signed certificate is fine)
//    "chromium": "/usr/bin/chromium",
//    "health_title": "...",                    the title Redoc shows for GET /health
//    "screenshot": "/path/docs.png",           where to save the Swagger UI page after the request
//    "timeout_ms": 30000}                      for every wait
//
// Swagger UI (/docs): waits for the GET /health operation, opens it, clicks "Try it out" and "Execute", and reads
// the live response's status and body. Redoc (/redoc): waits for the heading of GET /health. Every wait is for a
// selector, with the timeout; nothing sleeps. Prints one JSON object on standard output: {"swagger": {"status",
// "body"}, "redoc": {"heading"}, "violations": [Content-Security-Policy violations], "errors": [uncaught page
// errors]}; a step that fails exits with status 1 and says which on standard error.
'use strict';

const { launch } = require('./chromium');

const config = JSON.parse(process.argv[2]);
const timeout = config.timeout_ms || 30000;

// Collects the page's CSP violations as they happen (set up before any of its scripts runs).
function watchViolations() {
  window.__violations = [];
  document.addEventListener('securitypolicyviolation', (e) => {
    window.__violations.push(e.violatedDirective + ' ' + (e.blockedURI || '') + ' ' + (e.sourceFile || ''));
  });
}

async function swagger(page, result) {
  await page.goto(config.base + '/docs', { waitUntil: 'domcontentloaded', timeout });
  const op = page.locator('.opblock.opblock-get', {
    has: page.locator('.opblock-summary-path[data-path="/health"]'),
  });
  await op.waitFor({ state: 'visible', timeout });
  await op.locator('.opblock-summary').first().click({ timeout });
  await op.locator('button.try-out__btn').click({ timeout });
  await op.locator('button.execute').click({ timeout });
  const row = op.locator('.live-responses-table .response').first();
  await row.waitFor({ state: 'visible', timeout });
  const body = row.locator('.response-col_description pre.microlight, .response-col_description pre').first();
  await body.waitFor({ state: 'visible', timeout });
  result.swagger = {
    status: (await row.locator('.response-col_status').first().innerText({ timeout })).trim(),
    body: await body.innerText({ timeout }),
  };
  if (config.screenshot) {
    // The top of the page: the API's title and description, then the operations, GET /health first with its
    // answer.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: config.screenshot, fullPage: false, timeout });
  }
}

async function redoc(page, result) {
  await page.goto(config.base + '/redoc', { waitUntil: 'domcontentloaded', timeout });
  const heading = page.locator('h2', { hasText: config.health_title }).first();
  await heading.waitFor({ state: 'visible', timeout });
  result.redoc = { heading: (await heading.innerText({ timeout })).trim() };
}

async function main() {
  const browser = await launch(config, timeout);
  const result = { violations: [], errors: [] };
  let step = 'start';
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 1500 } });
    await context.addInitScript(watchViolations);
    for (const [name, run] of [['swagger', swagger], ['redoc', redoc]]) {
      step = name;
      const page = await context.newPage();
      page.on('pageerror', (e) => result.errors.push(name + ': ' + e.message));
      await run(page, result);
      result.violations.push(...(await page.evaluate(() => window.__violations)).map((v) => name + ': ' + v));
      await page.close();
    }
  } catch (e) {
    process.stderr.write('docs_browser.js: ' + step + ': ' + e.message + '\n');
    process.stdout.write(JSON.stringify(result) + '\n');
    await browser.close();
    process.exit(1);
  }
  await browser.close();
  process.stdout.write(JSON.stringify(result) + '\n');
}

main().catch((e) => {
  process.stderr.write('docs_browser.js: ' + e.stack + '\n');
  process.exit(1);
});
