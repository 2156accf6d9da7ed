import { createHash } from 'node:crypto';
import { imageName, parseImageReference, SHA256_DIGEST } from '../oci/reference.js';
import type { SideReply, SideRoute } from '../registry/side-server.js';
import { DEBUG_PAGE, DEBUG_SCRIPT, DEBUG_STYLE } from './page.js';
import { type DebugSources, debugState } from './state.js';

/** Longest a lookup from the page runs. */
const LOOKUP_TIMEOUT_MS = 3000;
/** Lookups from the page at once, at most: the metrics port is open to the cluster, and each one costs DHT queries. */
const MAX_LOOKUPS = 4;
/** Most providers one lookup lists. */
const MAX_PROVIDERS = 50;

/** What the page's lookup form answers. */
export interface LookupAnswer {
  /** The routing key asked for: a digest, or `<registry>/<repository>:<tag>`. */
  key: string;
  /** This node holds it itself. */
  local: boolean;
  /** Other nodes that advertise it, as the DHT names them (the first answer that names a live one). */
  providers: Array<{ id: string; registry: string }>;
  ms: number;
  /** Why the cluster could not be asked (a standalone node, or too many lookups at once). */
  note?: string;
}

/** The routing key a reference or digest is looked up under; undefined when it is neither. */
export function lookupKey(ref: string): string | undefined {
  const text = ref.trim();
  if (SHA256_DIGEST.test(text)) return text;
  const parsed = parseImageReference(text);
  if (parsed === undefined) return undefined;
  return parsed.digest ?? imageName(parsed.registry, parsed.repository, parsed.tag);
}

const json = (status: number, body: unknown): SideReply => ({
  status,
  contentType: 'application/json',
  body: JSON.stringify(body),
});

const sha256 = (text: string): string => createHash('sha256').update(text).digest('base64');

/**
 * Only the page's own script and style run, and it talks to nothing but this endpoint: names in the page
 * come from any client (repositories, tags), so a script smuggled into one must find nowhere to run.
 */
const PAGE_POLICY = [
  "default-src 'none'",
  `script-src 'sha256-${sha256(DEBUG_SCRIPT)}'`,
  `style-src 'sha256-${sha256(DEBUG_STYLE)}'`,
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** `GET /debug` (the page), `/debug/state` (its JSON) and `/debug/lookup?ref=` (who holds a reference). */
export function debugRoutes(sources: DebugSources): SideRoute[] {
  let lookups = 0;
  return [
    {
      method: 'get',
      path: '/debug',
      handle: async () => ({
        status: 200,
        contentType: 'text/html; charset=utf-8',
        body: DEBUG_PAGE,
        headers: [
          ['Content-Security-Policy', PAGE_POLICY],
          ['Cache-Control', 'no-store'],
          ['X-Content-Type-Options', 'nosniff'],
        ],
      }),
    },
    { method: 'get', path: '/debug/state', handle: async () => json(200, await debugState(sources)) },
    {
      method: 'get',
      path: '/debug/lookup',
      handle: async (query) => {
        const ref = (new URLSearchParams(query).get('ref') ?? '').slice(0, 1024);
        const key = lookupKey(ref);
        if (key === undefined)
          return json(400, {
            error: `${JSON.stringify(ref.slice(0, 80))} is not an image reference or a sha256 digest`,
          });
        const started = performance.now();
        const answer: LookupAnswer = { key, local: await sources.holds(key), providers: [], ms: 0 };
        if (sources.lookup === undefined)
          answer.note = 'standalone node (--bootstrap-kind none): no cluster to ask';
        else if (lookups >= MAX_LOOKUPS) answer.note = `${MAX_LOOKUPS} lookups already running; try again`;
        else {
          lookups++;
          try {
            for await (const provider of sources.lookup(key, AbortSignal.timeout(LOOKUP_TIMEOUT_MS))) {
              answer.providers.push({ id: provider.id, registry: provider.registry });
              if (answer.providers.length >= MAX_PROVIDERS) break;
            }
          } catch {
            // A lookup that timed out lists what it found.
          } finally {
            lookups--;
          }
        }
        answer.ms = Math.round(performance.now() - started);
        return json(200, answer);
      },
    },
  ];
}
