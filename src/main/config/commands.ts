import { bool, type FlagValues, list, value } from './flag.js';
import {
  address,
  containerdRegistryConfigPath,
  duration,
  integer,
  logLevel,
  mirroredRegistries,
  text,
} from './kinds.js';
import { registryFlags } from './registry-flags.js';
import { parseHostFlag, parseImageReferenceFlag, parseRegistryUrl, parseRepositoryFlag } from './values.js';

export { BOOTSTRAP_KINDS, LOG_LEVELS, STORE_KINDS } from './kinds.js';
export { registryFlags } from './registry-flags.js';

/** `shoal configuration`: writes containerd's mirror configuration. */
export const configurationFlags = {
  containerdRegistryConfigPath,
  mirroredRegistries,
  mirrorTargets: list(parseRegistryUrl, 'Mirrors containerd asks first, in order (http://127.0.0.1:5000).'),
  resolveTags: bool(true, 'Let mirrors resolve tags (capability "resolve"); otherwise only pulls by digest.'),
  prependExisting: bool(false, 'Keep existing hosts.toml mirrors, after the shoal targets.'),
  dialTimeout: duration('200ms', 'dial_timeout written for each mirror, so a dead mirror fails over fast.'),
  logLevel,
} as const;

/** `shoal cleanup`: removes shoal's mirror configuration and restores what was there before. */
export const cleanupFlags = {
  containerdRegistryConfigPath,
  logLevel,
} as const;

/** `shoal invalidate`: makes the cluster drop a tag mapping. */
export const invalidateFlags = {
  adminAddr: registryFlags.adminAddr,
  timeout: duration('10s', 'Longest wait for the node to pass the invalidation on to its peers.'),
  logLevel,
} as const;

/** `shoal webhook`: the admission webhook that pins pods' image tags to digests. */
export const webhookFlags = {
  webhookAddr: address(':8443', 'Address the admission webhook listens on (HTTPS, POST /pods).'),
  webhookTlsCert: text('', 'PEM certificate (chain) the webhook serves; required (mount it from a Secret).'),
  webhookTlsKey: text('', 'PEM private key of --webhook-tls-cert; required.'),
  shoalUrl: {
    ...value(
      parseRegistryUrl('http://127.0.0.1:5000', 'default'),
      parseRegistryUrl,
      'The local shoal’s registry API, which tags are resolved through.',
    ),
    defaultText: 'http://127.0.0.1:5000',
  },
  mirroredRegistries,
  registryFilters: registryFlags.registryFilters,
  resolveTimeout: duration(
    '2s',
    'Longest wait for one pod’s tags to resolve; a tag not resolved by then is left as it is, with a warning.',
  ),
  webhookMaxReviewBytes: integer(
    3 << 20,
    1 << 10,
    64 << 20,
    'Largest AdmissionReview taken; a larger one is answered 400.',
  ),
  logLevel,
} as const;

/** `shoal import`: copies an OCI image layout into the embedded store. */
export const importFlags = {
  dataDir: registryFlags.dataDir,
  verifyWorkers: registryFlags.verifyWorkers,
  registry: value(
    'docker.io',
    parseHostFlag,
    'Registry the imported tags belong to (as containerd names it in ?ns=).',
  ),
  repository: value(
    '',
    parseRepositoryFlag,
    'Repository the imported tags belong to (library/nginx). Required.',
  ),
  logLevel,
} as const;

/** `shoal doctor`: checks one node from the command line, with the registry's address and containerd flags. */
export const doctorFlags = {
  registryAddr: registryFlags.registryAddr,
  metricsAddr: registryFlags.metricsAddr,
  store: registryFlags.store,
  containerdSock: registryFlags.containerdSock,
  containerdNamespace: registryFlags.containerdNamespace,
  containerdContentPath: registryFlags.containerdContentPath,
  containerdRegistryConfigPath: registryFlags.containerdRegistryConfigPath,
  containerdConfig: registryFlags.containerdConfig,
  mirroredRegistries: registryFlags.mirroredRegistries,
  mirrorTargets: registryFlags.mirrorTargets,
  resolveTags: registryFlags.resolveTags,
  storeTimeout: registryFlags.storeTimeout,
  ref: list(
    parseImageReferenceFlag,
    'Image references to resolve through this node (nginx:1.27, ghcr.io/o/app:v1).',
  ),
  json: bool(false, 'Print the checklist as JSON instead of text.'),
  timeout: duration('5s', 'Longest wait for each answer (the local shoal, each member, each reference).'),
  logLevel,
} as const;

export type RegistryConfig = FlagValues<typeof registryFlags>;
export type DoctorConfig = FlagValues<typeof doctorFlags>;
export type ConfigurationConfig = FlagValues<typeof configurationFlags>;
export type CleanupConfig = FlagValues<typeof cleanupFlags>;
export type ImportConfig = FlagValues<typeof importFlags>;
export type InvalidateConfig = FlagValues<typeof invalidateFlags>;
export type WebhookConfig = FlagValues<typeof webhookFlags>;
