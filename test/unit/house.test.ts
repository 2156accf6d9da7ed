import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/**
 * The shape of the code, checked on every run: what a reviewer would otherwise have to remember. Sources are
 * read from src/main beside dist (this file runs from dist/test/unit).
 */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const MAIN = join(ROOT, 'src', 'main');

async function sources(): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const path of await readdir(MAIN, { recursive: true })) {
    if (path.endsWith('.ts')) files.set(path, await readFile(join(MAIN, path), 'utf8'));
  }
  return files;
}

/** Lines of code, without comment lines: a name in a comment is documentation, not a second owner. */
function codeLines(text: string): string[] {
  return text.split('\n').filter((line) => !/^\s*(\/\/|\/\*|\*)/.test(line));
}

describe('the house', () => {
  it('keeps every module small: cli.ts under 200 lines, every other file at most 300', async () => {
    const files = await sources();
    assert.ok(files.size > 50, `found only ${files.size} sources under ${MAIN}`);
    const lines = (text: string) => text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    assert.ok(lines(files.get('cli.ts') ?? '') < 200, `cli.ts has ${lines(files.get('cli.ts') ?? '')} lines`);
    const over = [...files]
      .filter(([, text]) => lines(text) > 300)
      .map(([path, text]) => `${path}: ${lines(text)}`);
    assert.deepEqual(over, []);
  });

  it('has no catch-all mirror/ directory: peer fetch, pull-through and tags each have their own', () => {
    assert.equal(existsSync(join(MAIN, 'mirror')), false);
    for (const feature of ['peer', 'pullthrough', 'tags'])
      assert.ok(existsSync(join(MAIN, feature)), feature);
  });

  it('names every x-shoal-* header in the peer protocol module only', async () => {
    const elsewhere = [...(await sources())]
      .filter(([path]) => path !== join('peer', 'protocol.ts'))
      .filter(([, text]) => codeLines(text).some((line) => /['"`]x-shoal-/i.test(line)))
      .map(([path]) => path);
    assert.deepEqual(elsewhere, []);
  });

  it('writes status lines from one table: no module spells out a status by hand', async () => {
    const byHand = [...(await sources())]
      .filter(([, text]) =>
        codeLines(text).some((line) => /writeStatus\(\s*['"`]\d{3}|writeHead\(\s*\d{3}/.test(line)),
      )
      .map(([path]) => path);
    assert.deepEqual(byHand, []);
  });

  it('has one HTTP server per kind: side routes are served by SideServer, none by a hand-made node:http server', async () => {
    const servers = [...(await sources())]
      .filter(([, text]) => codeLines(text).some((line) => /\bcreateServer\(/.test(line)))
      .map(([path]) => path);
    // Every listener is uWebSockets.js (the registry port, and SideServer for everything else) but one: the
    // webhook's HTTPS listener, which must take a renewed certificate while it listens. uWS loads its
    // certificate once, when the app is made; node:https swaps it in place (setSecureContext).
    assert.deepEqual(servers, [join('webhook', 'https-server.ts')]);
  });

  it('imports each heavy dependency from its one home', async () => {
    const homes: Array<[RegExp, string]> = [
      [/^uWebSockets\.js$/, 'registry/uws.ts'],
      [/^(libp2p|@libp2p\/|@chainsafe\/)/, 'routing/libp2p/'],
      [/^@grpc\//, 'containerd/'],
      [/^piscina$/, 'verify/'],
      [/^prom-client$/, 'metrics/'],
      [/^xxhash-wasm$/, 'pullthrough/'],
    ];
    const strays: string[] = [];
    for (const [path, text] of await sources()) {
      for (const [, from] of text.matchAll(/^import[^;]*?from '([^']+)'/gms)) {
        const home = homes.find(([pattern]) => pattern.test(from ?? ''));
        if (home !== undefined && !path.startsWith(home[1])) strays.push(`${path} imports ${from}`);
      }
    }
    assert.deepEqual(strays, []);
  });
});
