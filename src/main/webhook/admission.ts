import { BadRequestError } from '../errors.js';
import { type ImageReference, parseImageReference } from '../oci/reference.js';

/** The digest a tag names now, from the local shoal; rejects with the reason it could not tell. */
export type TagResolver = (image: ImageReference, signal: AbortSignal) => Promise<string>;

/** Which images are pinned: those of a mirrored registry (every registry when empty), none a filter matches. */
export interface PinPolicy {
  mirrored: ReadonlySet<string>;
  filters: readonly RegExp[];
  /** Longest wait for every tag of one review together; a tag still unresolved is left as it is. */
  resolveTimeoutMs: number;
}

export const ADMISSION_API_VERSION = 'admission.k8s.io/v1';

/** The pod spec lists a review may pin, by operation: a new pod's every list; an added debug container. */
const ALL_LISTS = ['containers', 'initContainers', 'ephemeralContainers'] as const;
const EPHEMERAL_ONLY = ['ephemeralContainers'] as const;

interface Candidate {
  path: string;
  image: string;
  ref: ImageReference;
}

interface JsonPatchOp {
  op: 'replace';
  path: string;
  value: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function invalid(message: string): never {
  throw new BadRequestError(`AdmissionReview: ${message}`);
}

/** `nginx:1.27` → `nginx:1.27@sha256:…`; a tagless `nginx` keeps its implied tag readable: `nginx:latest@…`. */
export function pinnedImage(image: string, ref: ImageReference, digest: string): string {
  return `${image}${ref.tagImplied ? `:${ref.tag}` : ''}@${digest}`;
}

/**
 * Answers one `AdmissionReview` (admission.k8s.io/v1): for a Pod being created (or given an ephemeral
 * container), each container image that is a tag of a mirrored, unfiltered registry is pinned to the digest
 * the local shoal resolves it to, by a JSONPatch. Everything else is allowed unchanged; a tag that cannot
 * be resolved in time is left as it is, with a warning. Malformed reviews throw BadRequestError (400).
 */
export async function admit(body: Buffer, resolve: TagResolver, policy: PinPolicy): Promise<unknown> {
  let review: unknown;
  try {
    review = JSON.parse(body.toString('utf8'));
  } catch {
    invalid('the body is not JSON');
  }
  if (!isObject(review)) invalid('the body is not a JSON object');
  if (review.apiVersion !== ADMISSION_API_VERSION || review.kind !== 'AdmissionReview')
    invalid(`only kind AdmissionReview of ${ADMISSION_API_VERSION} is answered`);
  const request = review.request;
  if (!isObject(request)) invalid('request is missing');
  const uid = request.uid;
  if (typeof uid !== 'string' || uid === '' || uid.length > 256) invalid('request.uid is missing');
  const answer = (patch: JsonPatchOp[], warnings: string[]): unknown => ({
    apiVersion: ADMISSION_API_VERSION,
    kind: 'AdmissionReview',
    response: {
      uid,
      allowed: true,
      ...(patch.length === 0
        ? {}
        : { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') }),
      ...(warnings.length === 0 ? {} : { warnings }),
    },
  });
  const kind = request.kind;
  if (!isObject(kind) || kind.group !== '' || kind.kind !== 'Pod') return answer([], []);
  const lists =
    request.subResource === 'ephemeralcontainers'
      ? EPHEMERAL_ONLY
      : request.operation === 'CREATE' && (request.subResource ?? '') === ''
        ? ALL_LISTS
        : [];
  if (lists.length === 0) return answer([], []);
  const pod = request.object;
  if (!isObject(pod) || !isObject(pod.spec)) invalid('request.object is not a Pod with a spec');
  const candidates = candidatesOf(pod.spec, lists, policy);
  const unique = [...new Map(candidates.map((each) => [each.image, each.ref])).entries()];
  // One deadline for the whole review; cleared as soon as every tag has its answer.
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(), policy.resolveTimeoutMs);
  const digests = new Map<string, string>();
  const warnings: string[] = [];
  await Promise.all(
    unique.map(async ([image, ref]) => {
      try {
        digests.set(image, await resolve(ref, deadline.signal));
      } catch (err) {
        const reason = deadline.signal.aborted
          ? `not resolved within ${policy.resolveTimeoutMs} ms`
          : errText(err);
        warnings.push(`shoal: ${image} left unpinned: ${reason}`);
      }
    }),
  ).finally(() => clearTimeout(timer));
  const patch: JsonPatchOp[] = [];
  for (const { path, image, ref } of candidates) {
    const digest = digests.get(image);
    if (digest !== undefined) patch.push({ op: 'replace', path, value: pinnedImage(image, ref, digest) });
  }
  return answer(patch, warnings.sort());
}

function candidatesOf(
  spec: Record<string, unknown>,
  lists: readonly (typeof ALL_LISTS)[number][],
  policy: PinPolicy,
): Candidate[] {
  const candidates: Candidate[] = [];
  for (const list of lists) {
    const containers = spec[list];
    if (containers === undefined || containers === null) continue;
    if (!Array.isArray(containers)) invalid(`spec.${list} is not a list`);
    for (const [index, container] of containers.entries()) {
      if (!isObject(container)) invalid(`spec.${list}[${index}] is not an object`);
      const image = container.image;
      if (typeof image !== 'string') continue;
      const ref = parseImageReference(image);
      if (ref === undefined || ref.digest !== undefined) continue;
      if (policy.mirrored.size > 0 && !policy.mirrored.has(ref.registry)) continue;
      const subject = `${ref.registry}/${ref.repository}:${ref.tag}`;
      if (policy.filters.some((filter) => filter.test(subject))) continue;
      candidates.push({ path: `/spec/${list}/${index}/image`, image, ref });
    }
  }
  return candidates;
}

const errText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 200);
