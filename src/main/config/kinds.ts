// The kinds of flag every command's table is built from, and the flags several commands share.
import { type Flag, list, value } from './flag.js';
import {
  type ByteSize,
  type ListenAddress,
  parseByteSize,
  parseChoice,
  parseDuration,
  parseInteger,
  parseListenAddress,
  parseRegistryUrl,
} from './values.js';

export function duration(defaultText: string, help: string): Flag<number> {
  return { ...value(parseDuration(defaultText, 'default'), parseDuration, help), defaultText };
}

export function address(defaultText: string, help: string): Flag<ListenAddress> {
  return { ...value(parseListenAddress(defaultText, 'default'), parseListenAddress, help), defaultText };
}

export function integer(defaultValue: number, min: number, max: number, help: string): Flag<number> {
  return value(defaultValue, (raw, flag) => parseInteger(raw, flag, min, max), help);
}

export function byteSize(defaultText: string, help: string): Flag<ByteSize> {
  return { ...value(parseByteSize(defaultText, 'default'), parseByteSize, help), defaultText };
}

export const text = (defaultValue: string, help: string): Flag<string> =>
  value(defaultValue, (raw) => raw, help);

export const BOOTSTRAP_KINDS = ['none', 'static', 'dns', 'http'] as const;

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export const STORE_KINDS = ['auto', 'containerd', 'embedded'] as const;

export const logLevel = value<(typeof LOG_LEVELS)[number]>(
  'info',
  (raw, flag) => parseChoice(raw, flag, LOG_LEVELS),
  'Log level: trace, debug, info, warn, error, fatal or silent.',
);

export const mirroredRegistries = list(
  parseRegistryUrl,
  'Registries to mirror, as URLs (https://docker.io). Empty: every registry.',
);

export const containerdRegistryConfigPath = text(
  '/etc/containerd/certs.d',
  "containerd's registry config_path: the directory holding <host>/hosts.toml.",
);
