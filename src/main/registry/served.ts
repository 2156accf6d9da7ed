import { ManifestUnknownError, NameUnknownError } from '../errors.js';
import type { PullRoute } from '../oci/path.js';
import { parseRegistryHost, registryInPath } from '../oci/reference.js';
import type { RequestTrace } from './trace.js';

/** A parsed pull route other than the API ping. */
export type ContentRoute = Exclude<PullRoute, { kind: 'ping' }>;

export interface ServedInit {
  /** Registry assumed when a request carries no `ns` parameter; default docker.io. */
  defaultRegistry?: string;
  /** Registry hosts served; empty serves every registry. */
  mirroredRegistries?: readonly string[];
  /** A match on `registry/repo:tag` or `registry/repo@digest` is not served. */
  registryFilters?: readonly RegExp[];
  /** Serve manifests by tag; false answers tag requests 404 (`--resolve-tags`). Default true. */
  resolveTags?: boolean;
}

/** What the ledger calls each route's requests. */
const KIND_OF_ROUTE: Record<ContentRoute['kind'], RequestTrace['kind']> = {
  manifest: 'manifest',
  blob: 'blob',
  tags: 'tag_list',
  referrers: 'referrers',
};

/**
 * Which registry a request is for, and whether this node serves it: the mirrored registries,
 * `--registry-filters` and `--resolve-tags`, which hold for every request whoever sends it.
 */
export class ServedRegistries {
  readonly defaultRegistry: string;
  readonly filters: readonly RegExp[];
  readonly #mirrored: ReadonlySet<string>;
  readonly #resolveTags: boolean;

  constructor(init: ServedInit = {}) {
    this.defaultRegistry = init.defaultRegistry ?? 'docker.io';
    this.#mirrored = new Set((init.mirroredRegistries ?? []).map((host) => host.toLowerCase()));
    this.filters = init.registryFilters ?? [];
    this.#resolveTags = init.resolveTags ?? true;
  }

  /**
   * The registry a request means: its `ns` (containerd's way), else the first path component when it names a
   * host (`/v2/ghcr.io/owner/app/…`, for podman, skopeo and other clients that cannot send `ns`), else the
   * default registry. What it finds is written into the trace, then checked: a refusal marks it filtered.
   */
  place(query: string, parsed: ContentRoute, trace: RequestTrace): { registry: string; route: ContentRoute } {
    const placed = this.#placed(query, parsed);
    const { registry, route } = placed;
    trace.kind = KIND_OF_ROUTE[route.kind];
    trace.registry = registry;
    trace.repository = route.repository;
    trace.reference =
      route.kind === 'manifest'
        ? (route.tag ?? route.digest)
        : route.kind === 'tags'
          ? undefined
          : route.digest;
    trace.filtered = true;
    this.#check(registry, route);
    trace.filtered = false;
    return placed;
  }

  #placed(query: string, route: ContentRoute): { registry: string; route: ContentRoute } {
    const ns = new URLSearchParams(query).get('ns');
    if (ns !== null && ns !== '') return { registry: parseRegistryHost(ns), route };
    const named = registryInPath(route.repository);
    if (named === undefined) return { registry: this.defaultRegistry, route };
    return { registry: named.registry, route: { ...route, repository: named.repository } };
  }

  #check(registry: string, route: ContentRoute): void {
    if (this.#mirrored.size > 0 && !this.#mirrored.has(registry)) {
      throw new NameUnknownError(`registry ${registry} is not mirrored by this node`);
    }
    if (route.kind === 'tags') return;
    const ref =
      route.kind === 'manifest' && route.tag !== undefined
        ? `${registry}/${route.repository}:${route.tag}`
        : `${registry}/${route.repository}@${route.digest}`;
    if (!this.#resolveTags && route.kind === 'manifest' && route.tag !== undefined) {
      throw new ManifestUnknownError(`${ref}: this node does not resolve tags (--resolve-tags=false)`);
    }
    if (this.filters.some((filter) => filter.test(ref))) {
      throw new NameUnknownError(`${ref} is excluded by a registry filter`);
    }
  }
}
