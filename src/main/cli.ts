#!/usr/bin/env node
import './runtime.js';
import './polyfill.js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type CleanupConfig,
  type ConfigurationConfig,
  cleanupFlags,
  configurationFlags,
  type DoctorConfig,
  doctorFlags,
  type ImportConfig,
  type InvalidateConfig,
  importFlags,
  invalidateFlags,
  type RegistryConfig,
  registryFlags,
  type WebhookConfig,
  webhookFlags,
} from './config/commands.js';
import { type FlagSet, parseFlags, renderHelp } from './config/flag.js';
import { cleanupHostsConfig } from './containerd/hosts.js';
import { ConfigError, isShoalError } from './errors.js';
import { createLogger } from './log/logger.js';
import { ShoalNode } from './node/node.js';
import { runConfiguration, runDoctor, runImport, runInvalidate } from './tools.js';
import { startWebhook } from './webhook/webhook.js';

type Env = Readonly<Record<string, string | undefined>>;

interface Command {
  summary: string;
  usage: string;
  flags: FlagSet;
  /** Takes arguments besides flags (a layout directory, an image name). */
  positional?: boolean;
  run(values: never, positional: string[], out: NodeJS.WritableStream): Promise<number>;
}

/** Every command, with its flag table (the k8s manifests are checked against it). */
export const COMMANDS: Record<string, Command> = {
  registry: {
    summary: 'Run the mirror: serve the OCI pull API from the node’s content store.',
    usage: 'Usage: shoal registry [flags]',
    flags: registryFlags,
    run: (config: RegistryConfig) => runRegistry(config),
  },
  configuration: {
    summary: 'Write containerd’s hosts.toml mirror configuration.',
    usage: 'Usage: shoal configuration --mirror-targets URL… [--mirrored-registries URL…] [flags]',
    flags: configurationFlags,
    run: (config: ConfigurationConfig, _positional, out) => runConfiguration(config, out),
  },
  cleanup: {
    summary: 'Remove shoal’s containerd configuration and restore what was there before.',
    usage: 'Usage: shoal cleanup [flags]',
    flags: cleanupFlags,
    run: (config: CleanupConfig) => cleanupHostsConfig(config.containerdRegistryConfigPath).then(() => 0),
  },
  import: {
    summary: 'Copy an OCI image layout into the embedded store and tag its manifests.',
    usage: 'Usage: shoal import --repository REPO [--registry HOST] [--data-dir DIR] LAYOUT_DIR',
    flags: importFlags,
    positional: true,
    run: (config: ImportConfig, positional, out) => runImport(config, positional, out),
  },
  invalidate: {
    summary: 'Make the whole cluster drop a tag mapping (registry/repo:tag), through the local node.',
    usage: 'Usage: shoal invalidate [--admin-addr HOST:PORT] REGISTRY/REPOSITORY:TAG',
    flags: invalidateFlags,
    positional: true,
    run: (config: InvalidateConfig, positional, out) => runInvalidate(config, positional, out),
  },
  doctor: {
    summary: 'Check this node: containerd’s setup, the local shoal, its members, and --ref images.',
    usage: 'Usage: shoal doctor [--ref IMAGE…] [--json] [the registry’s address and containerd flags]',
    flags: doctorFlags,
    run: (config: DoctorConfig, _positional, out) => runDoctor(config, out),
  },
  webhook: {
    summary: 'Serve the admission webhook that pins pods’ image tags to digests (HTTPS).',
    usage: 'Usage: shoal webhook --webhook-tls-cert FILE --webhook-tls-key FILE [flags]',
    flags: webhookFlags,
    run: (config: WebhookConfig) => runWebhook(config),
  },
};

function topHelp(): string {
  const lines = [
    'shoal: a peer-to-peer OCI registry mirror for Kubernetes.',
    '',
    'Usage: shoal <command> [flags]',
    '',
    'Commands:',
  ];
  for (const [name, command] of Object.entries(COMMANDS))
    lines.push(`  ${name.padEnd(14)} ${command.summary}`);
  lines.push(
    '',
    'Run `shoal <command> --help` for its flags. Every flag can also be set by its environment variable.',
  );
  return lines.join('\n');
}

/** Runs the CLI; returns the exit code. Separated from process wiring so tests can call it. */
export async function main(
  argv: readonly string[],
  env: Env,
  out: NodeJS.WritableStream = process.stdout,
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    out.write(`${topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined)
    throw new ConfigError(`unknown command ${JSON.stringify(name)} (see shoal --help)`);
  if (rest.includes('--help') || rest.includes('-h')) {
    out.write(`${renderHelp(command.usage, command.flags)}\n`);
    return 0;
  }
  const { values, positional } = parseFlags(command.flags, rest, env);
  if (command.positional !== true && positional.length > 0) {
    throw new ConfigError(`unexpected argument ${JSON.stringify(positional[0])} (flags start with --)`);
  }
  return command.run(values as never, positional, out);
}

/** Runs a node until SIGTERM or SIGINT, then drains it for --shutdown-grace; 3 if the drain cut anything. */
async function runRegistry(config: RegistryConfig): Promise<number> {
  const log = createLogger(config.logLevel);
  const node = await ShoalNode.start(config, log);
  const signal = await untilSignal();
  const started = Date.now();
  log.info({ signal, graceMs: config.shutdownGrace }, 'draining: new connections are refused');
  const { cut } = await node.drain(started + config.shutdownGrace);
  await node.stop();
  if (cut > 0) {
    log.warn(
      { cut, graceMs: config.shutdownGrace },
      'stopped; --shutdown-grace ran out and responses were cut',
    );
    return 3;
  }
  log.info({ ms: Date.now() - started }, 'stopped; every response in flight finished');
  return 0;
}

/** Serves the webhook until SIGTERM or SIGINT; reviews in flight are small and bounded by their timeout. */
async function runWebhook(config: WebhookConfig): Promise<number> {
  const log = createLogger(config.logLevel);
  const server = await startWebhook(config, log);
  log.info({ signal: await untilSignal() }, 'webhook stopping');
  await server.stop();
  return 0;
}

function untilSignal(): Promise<string> {
  return new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  return entry !== undefined && realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
}

if (isEntryPoint()) {
  main(process.argv.slice(2), process.env).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof ConfigError) {
        process.stderr.write(`shoal: ${err.message}\n`);
        process.exit(2);
      }
      process.stderr.write(
        `shoal: ${isShoalError(err) ? err.message : String((err as Error)?.stack ?? err)}\n`,
      );
      process.exit(1);
    },
  );
}
