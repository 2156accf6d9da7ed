import type { WebhookConfig } from '../config/commands.js';
import { BadRequestError, ConfigError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { MANIFEST_ACCEPT } from '../oci/media-types.js';
import { type ImageReference, SHA256_DIGEST } from '../oci/reference.js';
import { type SideRoute, SideServer } from '../registry/side-server.js';
import { loadTlsFiles } from '../registry/tls.js';
import { admit, type PinPolicy, type TagResolver } from './admission.js';

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

/** `shoal webhook`: the HTTPS admission webhook that pins pods' image tags to digests. */
export async function startWebhook(config: WebhookConfig, log: Logger): Promise<SideServer> {
  const tls = await loadTlsFiles(config.webhookTlsCert, config.webhookTlsKey, {
    cert: '--webhook-tls-cert',
    key: '--webhook-tls-key',
  });
  if (tls === undefined) {
    throw new ConfigError(
      '--webhook-tls-cert and --webhook-tls-key are required: the API server calls webhooks over HTTPS only',
    );
  }
  const policy: PinPolicy = {
    mirrored: new Set(config.mirroredRegistries.map((url) => url.host)),
    filters: config.registryFilters,
    resolveTimeoutMs: config.resolveTimeout,
  };
  const livez: SideRoute = {
    method: 'get',
    path: '/livez',
    handle: async () => ({ status: 200, contentType: 'text/plain', body: 'ok\n' }),
  };
  const server = new SideServer(
    {
      name: 'webhook',
      routes: [
        admissionRoute(shoalTagResolver(config.shoalUrl), policy, config.webhookMaxReviewBytes, log),
        livez,
      ],
    },
    { host: config.webhookAddr.host, port: config.webhookAddr.port, tls },
  );
  await server.start();
  log.info({ port: server.port, shoal: config.shoalUrl.origin }, 'admission webhook listening (https)');
  return server;
}
