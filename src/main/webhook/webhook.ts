import type { WebhookConfig } from '../config/commands.js';
import { BadRequestError, ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { type ImageReference, SHA256_DIGEST } from '../oci/reference.js';
import type { SideRoute } from '../registry/side-server.js';
import { readTlsPair } from '../registry/tls.js';
import { admit, type PinPolicy, type TagResolver } from './admission.js';
import { CertificateWatch } from './certificate-watch.js';
import { WebhookHttpsServer } from './https-server.js';

/** Where the API server sends Pod reviews (the MutatingWebhookConfiguration's `service.path`). */
export const WEBHOOK_PATH = '/pods';

/**
 * Resolves a tag through the local shoal's registry API: a HEAD of the manifest by tag with `?ns=`, as
 * containerd asks it. The digest is what containerd would pull for that tag now.
 */
export function shoalTagResolver(shoal: URL): TagResolver {
  return async (ref: ImageReference, signal: AbortSignal) => {
    const url = new URL(`/v2/${ref.repository}/manifests/${ref.tag}`, shoal);
    url.searchParams.set('ns', ref.registry);
    const response = await fetch(url, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_ACCEPT },
      redirect: 'error',
      signal,
    });
    if (response.status !== 200) throw new Error(`shoal at ${shoal.host} answered ${response.status}`);
    const digest = response.headers.get('docker-content-digest') ?? '';
    if (!SHA256_DIGEST.test(digest)) throw new Error(`shoal at ${shoal.host} named no sha256 digest`);
    return digest;
  };
}

/** `POST /pods`: one AdmissionReview in, its answer out; a malformed or oversized one is answered 400. */
export function admissionRoute(
  resolve: TagResolver,
  policy: PinPolicy,
  maxBodyBytes: number,
  log: Logger,
): SideRoute {
  return {
    method: 'post',
    path: WEBHOOK_PATH,
    maxBodyBytes,
    handle: async (_query, body) => {
      try {
        const review = await admit(body, resolve, policy);
        const response = (review as { response: { patch?: string; warnings?: string[] } }).response;
        if (response.warnings !== undefined) log.warn({ warnings: response.warnings }, 'tags left unpinned');
        else if (response.patch !== undefined) log.debug({}, 'pinned a pod’s tags');
        return { status: 200, contentType: 'application/json', body: JSON.stringify(review) };
      } catch (err) {
        if (!(err instanceof BadRequestError)) throw err;
        log.warn({ err: err.message }, 'refused a malformed AdmissionReview');
        return { status: 400, contentType: 'text/plain', body: `${err.message}\n` };
      }
    },
  };
}

/** A running webhook: its port, and a stop that closes the listener and the certificate watch. */
export interface RunningWebhook {
  readonly port: number;
  stop(): Promise<void>;
}

const TLS_FLAGS = { cert: '--webhook-tls-cert', key: '--webhook-tls-key' };

/**
 * `shoal webhook`: the HTTPS admission webhook that pins pods' image tags to digests. It serves a renewed
 * certificate as soon as its files change, and answers `/readyz` 503 once its certificate has expired.
 */
export async function startWebhook(config: WebhookConfig, log: Logger): Promise<RunningWebhook> {
  // Read and checked once: the pair read here is the one served.
  const files = { certFile: config.webhookTlsCert, keyFile: config.webhookTlsKey };
  if (files.certFile === '' || files.keyFile === '') {
    throw new ConfigError(
      '--webhook-tls-cert and --webhook-tls-key are required: the API server calls webhooks over HTTPS only',
    );
  }
  const pair = await readTlsPair(files, TLS_FLAGS);
  const policy: PinPolicy = {
    mirrored: new Set(config.mirroredRegistries.map((url) => url.host)),
    filters: config.registryFilters,
    resolveTimeoutMs: config.resolveTimeout,
  };
  let certificate: CertificateWatch | undefined;
  const text = (status: number, body: string) => ({ status, contentType: 'text/plain', body });
  const livez: SideRoute = { method: 'get', path: '/livez', handle: async () => text(200, 'ok\n') };
  const readyz: SideRoute = {
    method: 'get',
    path: '/readyz',
    handle: async () =>
      certificate?.expired() === true
        ? text(503, 'the serving certificate has expired\n')
        : text(200, 'ready\n'),
  };
  const server = new WebhookHttpsServer(
    {
      name: 'webhook',
      routes: [
        admissionRoute(shoalTagResolver(config.shoalUrl), policy, config.webhookMaxReviewBytes, log),
        livez,
        readyz,
      ],
    },
    pair,
  );
  try {
    await server.listen(config.webhookAddr.host, config.webhookAddr.port);
  } catch (cause) {
    throw new ConfigError(
      `--webhook-addr: cannot listen on ${config.webhookAddr.host ?? '*'}:${config.webhookAddr.port}`,
      { cause },
    );
  }
  certificate = new CertificateWatch(
    { log, onChange: (next) => server.setCertificate(next) },
    { files, flags: TLS_FLAGS, current: pair },
  );
  certificate.start();
  log.info(
    { port: server.port, shoal: config.shoalUrl.origin, notAfter: pair.notAfter.toISOString() },
    'admission webhook listening (https)',
  );
  const watch = certificate;
  return {
    port: server.port,
    stop: async () => {
      watch.stop();
      await server.stop();
    },
  };
}
