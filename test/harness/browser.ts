import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';

/** Where tests leave what a person looks at afterwards (screenshots); kept out of git. */
export const TEST_OUTPUT = fileURLToPath(new URL('../../../test/output/', import.meta.url));

/** Debian's chromium (installed by test/install-system-deps.sh); Playwright never downloads a browser here. */
export const CHROMIUM = '/usr/bin/chromium';

/**
 * Headless chromium with what makes it quiet on a closed network: no background fetches, no component or
 * sync updates, no QUIC. As root it needs --no-sandbox.
 */
export async function launchChromium(): Promise<Browser> {
  await mkdir(TEST_OUTPUT, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}
