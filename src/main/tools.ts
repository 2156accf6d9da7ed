import type { ConfigurationConfig, DoctorConfig, ImportConfig, InvalidateConfig } from './config/commands.js';
import { writeHostsConfig } from './containerd/hosts.js';
import { doctor, renderChecklist } from './doctor.js';
import { ConfigError } from './errors.js';
import { createLogger } from './log/logger.js';
import { Metrics } from './metrics/metrics.js';
import { startVerifier } from './node/parts.js';
import { canonicalImageName } from './oci/reference.js';
import { EmbeddedStore } from './store/embedded.js';
import { importOciLayout } from './store/oci-layout.js';
import { ADMIN_INVALIDATE_PATH } from './tags/tag-invalidator.js';
import { httpOrigin } from './util/url.js';

// The commands besides `shoal registry`: each runs once and exits.

export async function runConfiguration(
  config: ConfigurationConfig,
  out: NodeJS.WritableStream,
): Promise<number> {
  const written = await writeHostsConfig({
    configPath: config.containerdRegistryConfigPath,
    mirroredRegistries: config.mirroredRegistries,
    mirrorTargets: config.mirrorTargets,
    resolveTags: config.resolveTags,
    prependExisting: config.prependExisting,
    dialTimeoutMs: config.dialTimeout,
    warn: (message) => out.write(`warning: ${message}\n`),
  });
  for (const file of written) out.write(`wrote ${file}\n`);
  return 0;
}

export async function runInvalidate(
  config: InvalidateConfig,
  positional: string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const [ref, extra] = positional;
  if (ref === undefined || extra !== undefined)
    throw new ConfigError('invalidate: name exactly one REGISTRY/REPOSITORY:TAG');
  let name: string;
  try {
    name = canonicalImageName(ref);
  } catch (err) {
    throw new ConfigError(`invalidate: ${(err as Error).message}`);
  }
  const url = `${httpOrigin(config.adminAddr.host ?? '127.0.0.1', config.adminAddr.port)}${ADMIN_INVALIDATE_PATH}`;
  let response: Response;
  try {
    response = await fetch(`${url}?${new URLSearchParams({ name })}`, {
      method: 'POST',
      signal: AbortSignal.timeout(config.timeout),
    });
  } catch (cause) {
    throw new ConfigError(`--admin-addr: no shoal answered at ${url} (${(cause as Error).message})`, {
      cause,
    });
  }
  const text = await response.text();
  if (response.status !== 200)
    throw new ConfigError(`invalidate: the node answered ${response.status}: ${text.trim()}`);
  const result = JSON.parse(text) as { members: number; told: number };
  out.write(`invalidated ${name}; told ${result.told} of ${result.members} peers\n`);
  return result.told < result.members ? 3 : 0;
}

export async function runImport(
  config: ImportConfig,
  positional: string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const [layout, extra] = positional;
  if (layout === undefined || extra !== undefined)
    throw new ConfigError('import: name exactly one OCI layout directory');
  if (config.repository === '') throw new ConfigError('--repository: required');
  const verifier = await startVerifier(config, createLogger(config.logLevel), new Metrics());
  try {
    const store = new EmbeddedStore({ verifier }, { dataDir: config.dataDir });
    await store.start();
    const result = await importOciLayout(store, layout, {
      registry: config.registry,
      repository: config.repository,
    });
    await store.stop();
    out.write(`imported ${result.blobs} blobs; tags: ${result.tags.join(', ') || '(none)'}\n`);
  } finally {
    await verifier.stop();
  }
  return 0;
}

/** `shoal doctor`: the checklist (or its JSON); exit 0 when every check passed, 1 when any failed. */
export async function runDoctor(config: DoctorConfig, out: NodeJS.WritableStream): Promise<number> {
  const checks = await doctor(config);
  const ok = checks.every((check) => check.ok);
  out.write(config.json ? `${JSON.stringify({ ok, checks }, null, 2)}\n` : renderChecklist(checks));
  return ok ? 0 : 1;
}
