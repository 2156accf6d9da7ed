import { bool, list, value } from './flag.js';
import {
  address,
  BOOTSTRAP_KINDS,
  byteSize,
  containerdRegistryConfigPath,
  duration,
  integer,
  logLevel,
  mirroredRegistries,
  STORE_KINDS,
  text,
} from './kinds.js';
import {
  type ListenAddress,
  parseChoice,
  parseHostFlag,
  parseListenAddress,
  parseMultiaddrFlag,
  parseRegex,
  parseRegistryUrl,
} from './values.js';

/** `shoal registry`: the mirror daemon. */
export const registryFlags = {
  registryAddr: address(
    ':5000',
    'Address the OCI registry API listens on, blob bytes included (what containerd, other clients and peers are pointed at).',
  ),
  idleTimeout: duration(
    '30s',
    'Longest a blob reader may take no bytes before it is cut, and the window upstream downloads are judged over. A reader that takes bytes, however slowly, is never cut. (Heads not complete and idle keep-alive connections are closed by uWebSockets.js after 10 s.)',
  ),
  shutdownGrace: duration(
    '25s',
    'On SIGTERM: how long in-flight downloads may run to completion (new connections are refused, /readyz answers 503); what remains is then cut and the exit status is 3. Keep it below terminationGracePeriodSeconds (30 s).',
  ),
  registryTlsAddr: address(
    ':5443',
    'Address the registry API also listens on over TLS, when --registry-tls-cert and --registry-tls-key are given (for clients that try https first: podman, skopeo, crane).',
  ),
  registryTlsCert: text('', 'PEM certificate (chain) of the TLS registry listener; with --registry-tls-key.'),
  registryTlsKey: text('', 'PEM private key of the TLS registry listener; with --registry-tls-cert.'),
  routerAddr: address(':5001', 'Address the P2P router listens on (peer routing).'),
  metricsAddr: address(
    ':9090',
    'Address the metrics endpoint listens on (GET /metrics, and the debug page at /debug with --debug-web).',
  ),
  requestMetrics: bool(
    true,
    'Count every request: the request families on /metrics, one log line per request, and the debug page’s list (false: none of these; it exists to measure what counting costs).',
  ),
  debugWeb: bool(
    true,
    'Serve the debug page (GET /debug) and its JSON (/debug/state, /debug/lookup) on --metrics-addr.',
  ),
  strictPreflight: bool(
    false,
    'A failed preflight check makes /readyz answer 503 (default: a warning only).',
  ),
  adminAddr: address(
    '127.0.0.1:5002',
    'Address the admin endpoint listens on (shoal invalidate talks to it); keep it on loopback.',
  ),
  containerdSock: text('/run/containerd/containerd.sock', "Path of containerd's gRPC socket."),
  containerdNamespace: text('k8s.io', 'containerd namespace whose images are served.'),
  containerdContentPath: text(
    '/var/lib/containerd/io.containerd.content.v1.content',
    "containerd's content directory; blobs are read from it directly when readable.",
  ),
  containerdRegistryConfigPath,
  containerdConfig: text(
    '/etc/containerd/config.toml',
    'containerd’s config file, read by preflight where containerd’s CRI plugin does not report its configuration.',
  ),
  mirrorTargets: list(
    parseRegistryUrl,
    'What containerd is pointed at to reach this node (as given to shoal configuration); preflight checks that hosts.toml names one. Empty: http://<--registry-addr>.',
  ),
  dataDir: text('/var/lib/shoal', 'Directory for the embedded store and node state.'),
  store: value<(typeof STORE_KINDS)[number]>(
    'auto',
    (raw, flag) => parseChoice(raw, flag, STORE_KINDS),
    'Content store: containerd, embedded, or auto (containerd when its socket answers, else embedded).',
  ),
  mirroredRegistries,
  resolveTags: bool(
    true,
    'Serve manifests by tag; false serves digests only, and tag requests get 404 (containerd asks upstream).',
  ),
  registryFilters: list(
    parseRegex,
    'Regular expressions on registry/repo:tag or registry/repo@digest; a match is not served (404).',
  ),
  tagMaxAge: duration(
    '0',
    'Oldest registry confirmation a tag may be answered from when the registry does not answer (0: any age).',
  ),
  defaultRegistry: value(
    'docker.io',
    parseHostFlag,
    'Registry assumed for requests without ?ns= (podman, docker, skopeo).',
  ),
  bootstrapKind: value<(typeof BOOTSTRAP_KINDS)[number]>(
    'none',
    (raw, flag) => parseChoice(raw, flag, BOOTSTRAP_KINDS),
    'How this node joins the P2P network: none (a standalone mirror), static, dns or http.',
  ),
  staticBootstrapPeers: list(
    parseMultiaddrFlag,
    'Multiaddrs of nodes to join through (/ip4/10.0.0.1/tcp/5001[/p2p/<id>]); one list may name this node too.',
  ),
  dnsBootstrapDomain: text(
    '',
    'With --bootstrap-kind dns: name whose A/AAAA records are dialled on the router port.',
  ),
  dnsBootstrapResolver: text(
    '',
    'DNS server (host:port) for --dns-bootstrap-domain; empty uses the system resolver.',
  ),
  httpBootstrapAddr: value<ListenAddress | undefined>(
    undefined,
    parseListenAddress,
    'Serve this node’s multiaddrs at GET /id on this address, for other nodes’ http bootstrap.',
  ),
  httpBootstrapUrl: text('', 'With --bootstrap-kind http: URL of a peer’s /id endpoint to join through.'),
  p2pPskFile: text(
    '',
    'File holding the private network’s pre-shared key (/key/swarm/psk/1.0.0/ format); nodes without it cannot connect.',
  ),
  routerRefreshInterval: duration(
    '30s',
    'How often a node looks itself up in the DHT to meet the nodes near it (kad-dht’s default is 5m).',
  ),
  routerJoinTimeout: duration(
    '10s',
    'Longest /readyz waits for the first self-lookup (meeting the nearest nodes), then for the first advertise.',
  ),
  mirrorResolveTimeout: duration(
    '20ms',
    'Shortest wait for a first peer that holds wanted content; the wait is 3× the p99 of recent lookups, at least this.',
  ),
  mirrorResolveTimeoutMax: duration(
    '500ms',
    'Longest wait for a first peer, and the wait until 8 lookups were seen (a key asked for again waits for none).',
  ),
  mirrorLookupRefresh: duration(
    '5s',
    'Age after which a key’s providers are looked up again in the background; the old ones are served meanwhile.',
  ),
  mirrorResolveRetries: integer(3, 0, 100, 'Most peers tried for one request.'),
  manifestTimeout: duration(
    '3s',
    'Hard cap on HEAD and manifest requests; past it shoal answers 404 so containerd falls back.',
  ),
  storeTimeout: duration('5s', 'Longest wait for one answer from the content store (containerd, disk).'),
  streamChunkBytes: integer(1 << 20, 16 << 10, 16 << 20, 'Size of each buffer a blob is streamed through.'),
  peerUploadRate: integer(
    0,
    0,
    Number.MAX_SAFE_INTEGER,
    'Bytes per second this node streams to each member (0: unlimited); keeps peer serving off the node’s own pulls.',
  ),
  streamBuffers: integer(64, 4, 4096, 'Buffers in the streaming pool; bounds memory used by blob downloads.'),
  streamParkedBytes: integer(
    256 << 20,
    0,
    Number.MAX_SAFE_INTEGER,
    'Bytes slow readers may hold outside the streaming pool, all together: a reader that keeps a write waiting gives its pool buffers back and is served in small reads from memory of its own (0: never).',
  ),
  upstreamFallback: bool(
    false,
    'Fetch from the registry itself what neither this node nor its peers hold (pull-through), and cache it; needs --mirrored-registries.',
  ),
  insecureRegistries: list(
    parseHostFlag,
    'Registry hosts reached over plain http for pull-through (others use https).',
  ),
  upstreamPrivateHosts: list(
    parseHostFlag,
    'Mirrored registry hosts pull-through may reach at loopback, link-local or private addresses (others: public only).',
  ),
  registryCredentials: text(
    '',
    'A docker config.json with credentials for pull-through; never sent to peers.',
  ),
  cacheMaxBytes: byteSize(
    '10%',
    'Most bytes the embedded store (the pull-through cache) keeps: a size (20GiB) or a share of the disk holding --data-dir; least recently used content not being served is evicted (0: no bound).',
  ),
  upstreamTimeout: duration(
    '10s',
    'Longest wait for an upstream registry’s headers, retries, token and redirects included.',
  ),
  upstreamMinRate: integer(
    8 << 10,
    0,
    Number.MAX_SAFE_INTEGER,
    'Slowest an upstream (or owner) download may run, in bytes per second over each --idle-timeout; a slower one is dropped (0: only silence is).',
  ),
  verifyWorkers: integer(0, 0, 256, 'Digest worker threads; 0: one per core less one, at least 1.'),
  verifyRemote: bool(
    true,
    'Hash peer content in the digest workers and cut any response that fails; false trusts peers (containerd still checks).',
  ),
  verifyTimeout: duration('30s', 'Longest wait for a digest worker to hash one chunk or finish a check.'),
  verifyLocal: bool(
    false,
    'Scrub the local store in the background; corrupt content is withdrawn (and deleted if shoal’s own).',
  ),
  verifyLocalInterval: duration('24h', 'Time between two scrubs of the local store (--verify-local).'),
  verifyLocalRate: integer(64 << 20, 1 << 20, Number.MAX_SAFE_INTEGER, 'Bytes per second a scrub reads.'),
  peerCorruptQuarantine: duration('5m', 'How long a peer that sent content failing its digest is not asked.'),
  logLevel,
} as const;
