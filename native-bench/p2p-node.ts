import { silentLogger } from '../src/main/log/logger.js';
import { LookupCache } from '../src/main/peer/lookup-cache.js';
import { staticBootstrap } from '../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../src/main/routing/libp2p/router.js';

// One benchmark node in its own process (so its RSS and CPU are its own), driven over IPC by p2p.ts.

type Command =
  | { op: 'start'; dataDir: string; registryPort: number; bootstrap: string[] }
  | { op: 'advertise'; keys: string[] }
  | { op: 'lookup'; keys: string[] }
  | { op: 'warm'; keys: string[]; seconds: number; intervalMs: number }
  | { op: 'stats' }
  | { op: 'stop' };

let router: Libp2pRouter | undefined;

function started(): Libp2pRouter {
  if (router === undefined) throw new Error('node not started');
  return router;
}

/** Cold lookups, one key at a time: ms to the first provider, or to the end of a search that found none. */
async function lookups(keys: string[]): Promise<{ found: number[]; absent: number[] }> {
  const found: number[] = [];
  const absent: number[] = [];
  for (const key of keys) {
    const began = performance.now();
    const controller = new AbortController();
    let hit = false;
    for await (const _ of started().lookup(
      key,
      AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
    )) {
      hit = true;
      break;
    }
    (hit ? found : absent).push(performance.now() - began);
  }
  return { found, absent };
}

/** Requests every key every `intervalMs` through a lookup cache at its defaults; counts the DHT lookups. */
async function warm(keys: string[], seconds: number, intervalMs: number): Promise<unknown> {
  let lookups = 0;
  const cache = new LookupCache({ router: started(), onLookup: () => lookups++ });
  let requests = 0;
  let misses = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    const round = performance.now();
    await Promise.all(
      keys.map(async (key) => {
        requests++;
        for await (const _ of cache.lookup(key, AbortSignal.timeout(500))) return;
        misses++;
      }),
    );
    await new Promise((resolve) =>
      setTimeout(resolve, Math.max(0, intervalMs - (performance.now() - round))),
    );
  }
  return { requests, misses, lookups, seconds };
}

async function handle(command: Command): Promise<unknown> {
  switch (command.op) {
    case 'start':
      router = new Libp2pRouter(
        { log: silentLogger() },
        {
          host: '127.0.0.1',
          port: 0,
          dataDir: command.dataDir,
          registryPort: command.registryPort,
          bootstrap: staticBootstrap(command.bootstrap),
        },
      );
      await router.start();
      return { addresses: router.addresses };
    case 'advertise': {
      const cpu = process.cpuUsage();
      const began = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async (_, worker) => {
          for (let i = worker; i < command.keys.length; i += 16)
            await started().advertise([command.keys[i] as string]);
        }),
      );
      const used = process.cpuUsage(cpu);
      return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - began };
    }
    case 'lookup':
      return lookups(command.keys);
    case 'warm':
      return warm(command.keys, command.seconds, command.intervalMs);
    case 'stats':
      return { rssMiB: process.memoryUsage().rss / 2 ** 20, ready: router?.ready() ?? false };
    case 'stop':
      await router?.stop();
      setImmediate(() => process.exit(0));
      return {};
  }
}

process.on('message', (message: { id: number; command: Command }) => {
  handle(message.command).then(
    (result) => process.send?.({ id: message.id, result }),
    (err: unknown) => process.send?.({ id: message.id, error: String(err) }),
  );
});
