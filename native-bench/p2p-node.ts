import { silentLogger } from '../src/main/log/logger.js';
import { staticBootstrap } from '../src/main/routing/bootstrap.js';
import { Libp2pRouter } from '../src/main/routing/libp2p/router.js';

// One benchmark node in its own process (so its RSS and CPU are its own), driven over IPC by p2p.ts.

type Command =
  | { op: 'start'; dataDir: string; registryPort: number; bootstrap: string[] }
  | { op: 'advertise'; keys: string[] }
  | { op: 'lookup'; keys: string[] }
  | { op: 'stats' }
  | { op: 'stop' };

let router: Libp2pRouter | undefined;

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
      const started = performance.now();
      await Promise.all(
        Array.from({ length: 16 }, async (_, worker) => {
          for (let i = worker; i < command.keys.length; i += 16)
            await router?.advertise([command.keys[i] as string]);
        }),
      );
      const used = process.cpuUsage(cpu);
      return { cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - started };
    }
    case 'lookup': {
      const latencies: number[] = [];
      for (const key of command.keys) {
        const started = performance.now();
        const controller = new AbortController();
        for await (const _ of router?.lookup(
          key,
          AbortSignal.any([controller.signal, AbortSignal.timeout(5000)]),
        ) ?? []) {
          latencies.push(performance.now() - started);
          controller.abort();
          break;
        }
      }
      return { latencies };
    }
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
