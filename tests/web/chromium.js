// Headless Debian Chromium through playwright-core, launched the one way the browser tests here need it.
'use strict';

const { chromium } = require('playwright-core');

// config.chromium: the executable (default /usr/bin/chromium); timeout: milliseconds for the launch.
function launch(config, timeout) {
  return chromium.launch({
    executablePath: config.chromium || '/usr/bin/chromium',
    headless: true,
    timeout,
    // The machine's network is closed: no background connections, no component updates.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-quic',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

module.exports = { launch };
