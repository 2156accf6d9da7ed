import { Child, freePort, waitFor } from './process.js';
import { CLI } from './shoal.js';

/** `shoal webhook` as its Deployment runs it: its defaults, but for its address and `args`. */
export async function startWebhook(args: readonly string[]): Promise<{ child: Child; port: number }> {
  const port = await freePort();
  const child = new Child(process.execPath, [CLI, 'webhook', '--webhook-addr', `127.0.0.1:${port}`, ...args]);
  await waitFor(
    'webhook',
    async () => child.output.includes('admission webhook listening'),
    15_000,
    () => (child.running ? undefined : `exited:\n${child.output}`),
  );
  return { child, port };
}
