import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { smallImage } from '../test/harness/fixtures.js';
import { cachedLayout, pushLayout } from '../test/harness/images.js';
import { GoClients } from '../test/harness/podman.js';
import { freePort } from '../test/harness/process.js';
import { DistributionRegistry } from '../test/harness/registry.js';
import { importLayout, ShoalProcess } from '../test/harness/shoal.js';
import { selfSignedCert } from '../test/harness/tls.js';
import { removeDir, shortTempDir } from '../test/harness/tmp.js';
import { throughput } from './measure.js';

// What real clients meet at shoal's HTTP layer, against the CNCF distribution registry (Go's net/http) in
// the same run: the answer to each malformed request and how long it took, podman's wall time through the
// plain port, the TLS listener and direct, and blob bytes from the registry port against a bare node:http server.
// Run: npm run bench -- clients

const MiB = 1 << 20;
const WAIT_MS = 12_000;

const EDGES: ReadonlyArray<readonly [string, string | Buffer]> = [
  ['HTTP/1.0', 'GET /v2/ HTTP/1.0\r\n\r\n'],
  ['no Host', 'GET /v2/ HTTP/1.1\r\n\r\n'],
  ['unknown method', 'FOO /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['absolute-form', 'GET http://x/v2/ HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n'],
  ['HTTP/2.0 line', 'GET /v2/ HTTP/2.0\r\nHost: x\r\n\r\n'],
  [
    '60 header fields',
    `GET /v2/ HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 60 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
  ],
  ['two pipelined pings', 'GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n'],
];

/** The status lines a server sent for `payload`, and when it first answered or closed. */
function probe(port: number, payload: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = connect(port, '127.0.0.1');
    let text = '';
    let first: number | undefined;
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      const statuses = [...text.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((match) => match[1]).join('+');
      const ms = Math.round((first ?? performance.now()) - started);
      resolve(
        statuses === ''
          ? first === undefined
            ? `nothing in ${WAIT_MS} ms`
            : `closed, no status, ${ms} ms`
          : `${statuses} in ${ms} ms`,
      );
    };
    const timer = setTimeout(done, WAIT_MS);
    socket.on('data', (chunk) => {
      first ??= performance.now();
      text += chunk.toString('latin1');
      // A full answer to every request sent: stop waiting for more.
      if (
        (text.match(/\r\n\r\n/g) ?? []).length >=
        (typeof payload === 'string' ? (payload.match(/ HTTP\//g) ?? []).length : 1)
      )
        done();
    });
    socket.on('close', () => {
      first ??= performance.now();
      done();
    });
    socket.on('error', () => undefined);
    socket.write(payload);
  });
}

/** A real TLS handshake (Node's ClientHello) on a plain port: how long until the client gives up, and why. */
function tlsProbe(port: number): Promise<string> {
  return new Promise((resolve) => {
    const started = performance.now();
    const socket = tlsConnect({ port, host: '127.0.0.1', rejectUnauthorized: false });
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(`nothing in ${WAIT_MS} ms`);
    }, WAIT_MS);
    socket.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve(`${err.code ?? 'error'} in ${Math.round(performance.now() - started)} ms`);
    });
    socket.on('secureConnect', () => socket.destroy());
  });
}

/** Sequential GETs per second of a small blob at `url` over `ms`, with fetch (redirects followed). */
async function fetchRate(url: string, ms: number): Promise<number> {
  const until = performance.now() + ms;
  let done = 0;
  while (performance.now() < until) {
    await (await fetch(url)).arrayBuffer();
    done++;
  }
  return done / (ms / 1000);
}

export async function clientsBench(): Promise<string[]> {
  const rows = ['clients benchmark (shoal against the CNCF distribution registry, same run):'];
  const work = await shortTempDir('shoal-bench-clients');
  const image = await smallImage('bench-clients');
  const registry = new DistributionRegistry(join(work, 'registry'));
  const nodes: ShoalProcess[] = [];
  try {
    await registry.start();
    await pushLayout(image.dir, image.tag, registry.host, 'bench/app');
    const { cert, key } = await selfSignedCert(work, { ip: '127.0.0.1' });
    const tlsPort = await freePort();
    const node = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(work, 'shoal'),
      '--upstream-fallback',
      '--mirrored-registries',
      registry.url,
      '--insecure-registries',
      registry.host,
      '--default-registry',
      registry.host,
      '--registry-tls-addr',
      `127.0.0.1:${tlsPort}`,
      '--registry-tls-cert',
      cert,
      '--registry-tls-key',
      key,
      '--log-level',
      'error',
    ]);
    nodes.push(node);
    await node.start();

    rows.push('malformed requests: distribution | shoal');
    const answers: Array<readonly [string, string, string]> = await Promise.all(
      EDGES.map(
        async ([name, payload]) =>
          [name, await probe(registry.port, payload), await probe(node.port, payload)] as const,
      ),
    );
    const layer0 = image.image.layers[0]?.digest ?? '';
    const blobThenPing = `GET /v2/bench/app/blobs/${layer0}?ns=${registry.host} HTTP/1.1\r\nHost: x\r\n\r\nGET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n`;
    answers.push([
      'blob, then a ping',
      await probe(registry.port, blobThenPing),
      await probe(node.port, blobThenPing),
    ]);
    answers.unshift(['TLS handshake', await tlsProbe(registry.port), await tlsProbe(node.port)]);
    for (const [name, theirs, ours] of answers)
      rows.push(`  ${name.padEnd(20)} ${theirs.padEnd(26)} | ${ours}`);

    // podman (containers/image tries https first): each mirror is shoal without ns, so the default registry.
    const reference = `${registry.host}/bench/app:${image.tag}`;
    const timings: string[] = [];
    for (const [name, mirror] of [
      ['direct', undefined],
      ['shoal TLS listener', `127.0.0.1:${tlsPort}`],
      ['shoal plain port', `127.0.0.1:${node.port}`],
    ] as const) {
      const clients = new GoClients(join(work, `podman-${timings.length}`));
      await clients.configure(mirror === undefined ? [] : [{ registry: registry.host, mirror }]);
      const result = await clients.podman(['pull', '-q', '--tls-verify=false', reference]);
      timings.push(`${name} ${result.ms} ms`);
    }
    rows.push(`podman pull of a 64 KiB image: ${timings.join(', ')}`);

    // Blob bytes from the registry port (uWS), against a bare node:http file server streaming the same file.
    const { dir: layout, result: big } = await cachedLayout('bench-256', async (writer) => {
      const built = await writer.addImage({ layers: [{ size: 256 * MiB, seed: 'bench-256', gzip: false }] });
      writer.tag(built.manifest, 'bench');
      return built;
    });
    const local = new ShoalProcess([
      '--store',
      'embedded',
      '--data-dir',
      join(work, 'local'),
      '--log-level',
      'error',
    ]);
    await importLayout(join(work, 'local'), layout, 'docker.io', 'bench/big');
    await importLayout(join(work, 'local'), image.dir, 'docker.io', 'bench/small');
    nodes.push(local);
    await local.start();
    const layer = big.layers[0];
    const small = image.image.layers[0];
    if (layer === undefined || small === undefined) throw new Error('no layer');
    const path = `/v2/bench/big/blobs/${layer.digest}`;
    const shoalRate = await throughput(`${local.url}${path}`, 1, layer.size, 3);
    const plain = plainFileServer(join(work, 'local', 'blobs', 'sha256'));
    await new Promise<void>((resolve) => plain.listen(0, '127.0.0.1', resolve));
    const plainUrl = `http://127.0.0.1:${(plain.address() as { port: number }).port}`;
    const nodeHttp = await throughput(`${plainUrl}/${layer.digest}`, 1, layer.size, 3);
    rows.push(
      `256 MiB blob, 1 curl client: shoal's registry port (uWS) ${shoalRate.toFixed(2)} GB/s; a bare node:http file server ${nodeHttp.toFixed(2)} GB/s (shoal/node:http ${(shoalRate / nodeHttp).toFixed(2)})`,
    );
    const smallShoal = await fetchRate(`${local.url}/v2/bench/small/blobs/${small.digest}`, 3000);
    const smallPlain = await fetchRate(`${plainUrl}/${small.digest}`, 3000);
    plain.close();
    rows.push(
      `${small.size} B blob, sequential GETs: shoal ${smallShoal.toFixed(0)}/s; node:http file server ${smallPlain.toFixed(0)}/s (shoal/node:http ${(smallShoal / smallPlain).toFixed(2)})`,
    );
    return rows;
  } finally {
    for (const node of nodes) await node.stop();
    await registry.stop();
    await removeDir(work);
  }
}

/** The baseline: node:http streaming `/<sha256 digest>` from a blob directory, and nothing else. */
function plainFileServer(blobs: string): ReturnType<typeof createHttpServer> {
  return createHttpServer((req, res) => {
    const hex = (req.url ?? '').slice('/sha256:'.length);
    if (!/^[0-9a-f]{64}$/.test(hex)) {
      res.writeHead(404).end();
      return;
    }
    const file = join(blobs, hex);
    stat(file).then(
      (info) => {
        res.writeHead(200, { 'content-length': String(info.size) });
        createReadStream(file, { highWaterMark: MiB }).pipe(res);
      },
      () => res.writeHead(404).end(),
    );
  });
}
