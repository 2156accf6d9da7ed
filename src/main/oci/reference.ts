import { NameInvalidError, TagInvalidError } from '../errors.js';

// The OCI distribution-spec grammar for repository names and tags.
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_GRAMMAR = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_GRAMMAR = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

// A registry host as containerd sends it in `ns`: a DNS name or IPv4 address, or a bracketed IPv6
// address, with an optional port.
const HOST_LABEL = '[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?';
const REGISTRY_GRAMMAR = new RegExp(
  `^(?:${HOST_LABEL}(?:\\.${HOST_LABEL})*|\\[[0-9a-fA-F:.]+\\])(?::[0-9]{1,5})?$`,
);

export function parseRepository(name: string): string {
  if (name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME_GRAMMAR.test(name)) {
    throw new NameInvalidError(`invalid repository name ${JSON.stringify(name.slice(0, 80))}`);
  }
  return name;
}

export function isTag(text: string): boolean {
  return TAG_GRAMMAR.test(text);
}

export function parseTag(text: string): string {
  if (!isTag(text)) {
    throw new TagInvalidError(`invalid tag ${JSON.stringify(text.slice(0, 80))}`);
  }
  return text;
}

/** Validates a registry host (`docker.io`, `127.0.0.1:5000`, `[::1]:5000`). */
export function parseRegistryHost(host: string): string {
  const port = /:([0-9]+)$/.exec(host)?.[1];
  if (host.length > 253 || !REGISTRY_GRAMMAR.test(host) || (port !== undefined && Number(port) > 65535)) {
    throw new NameInvalidError(`invalid registry ${JSON.stringify(host.slice(0, 80))}`);
  }
  return host.toLowerCase();
}

/**
 * The registry a client named as the first path component, Docker's way: the component holds a dot or is
 * `localhost` (`ghcr.io/owner/app` → ghcr.io and owner/app). Undefined when it names none; a registry with a
 * port cannot be named so, since a path component holds no `:`.
 */
export function registryInPath(repository: string): { registry: string; repository: string } | undefined {
  const slash = repository.indexOf('/');
  if (slash <= 0) return undefined;
  const first = repository.slice(0, slash);
  if (!first.includes('.') && first !== 'localhost') return undefined;
  return { registry: parseRegistryHost(first), repository: repository.slice(slash + 1) };
}

/** The image name containerd stores for a tag: `<registry>/<repository>:<tag>`. */
export function imageName(registry: string, repository: string, tag: string): string {
  return `${registry}/${repository}:${tag}`;
}

/**
 * Parses `<registry>/<repository>:<tag>` (the form containerd names images in, and the key tags are
 * routed and invalidated under). The registry is required: `docker.io/library/nginx:1.27`.
 */
/** `text` as the one spelling tags are keyed under (lowercased registry); throws like parseImageName. */
export function canonicalImageName(text: string): string {
  const { registry, repository, tag } = parseImageName(text);
  return imageName(registry, repository, tag);
}

export function parseImageName(text: string): { registry: string; repository: string; tag: string } {
  const slash = text.indexOf('/');
  const colon = text.lastIndexOf(':');
  if (slash <= 0 || colon < slash) {
    throw new NameInvalidError(
      `${JSON.stringify(text.slice(0, 80))} is not <registry>/<repository>:<tag> (e.g. docker.io/library/nginx:1.27)`,
    );
  }
  return {
    registry: parseRegistryHost(text.slice(0, slash)),
    repository: parseRepository(text.slice(slash + 1, colon)),
    tag: parseTag(text.slice(colon + 1)),
  };
}

/** A pod's image reference, normalized the way the kubelet and containerd read it. */
export interface ImageReference {
  /** `docker.io` for names without a registry (and for Docker Hub's other spellings). */
  registry: string;
  /** `library/nginx` for `nginx`. */
  repository: string;
  /** The tag named, or `latest` when none is. */
  tag: string;
  /** True when the reference names no tag of its own. */
  tagImplied: boolean;
  /** The `sha256:…` the reference is pinned to, if any. */
  digest: string | undefined;
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

/** A sha256 digest, the only kind a pod's image is pinned by here. */
export const SHA256_DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * Parses a container image as a pod spec names it (`nginx`, `nginx:1.27`, `ghcr.io/o/app:v1@sha256:…`,
 * `localhost:5000/app`), Docker's way: the first component is a registry when it holds a dot or a colon or
 * is `localhost`; otherwise the image is on Docker Hub, under `library/` when it has no slash. Undefined
 * for anything that is not a valid reference.
 */
export function parseImageReference(text: string): ImageReference | undefined {
  if (text.length === 0 || text.length > 1024) return undefined;
  const at = text.indexOf('@');
  const named = at === -1 ? text : text.slice(0, at);
  const digest = at === -1 ? undefined : text.slice(at + 1);
  if (digest !== undefined && !SHA256_DIGEST.test(digest)) return undefined;
  const slash = named.indexOf('/');
  const first = slash === -1 ? '' : named.slice(0, slash);
  const hasRegistry = first.includes('.') || first.includes(':') || first === 'localhost';
  const path = hasRegistry ? named.slice(slash + 1) : named;
  const colon = path.lastIndexOf(':');
  const tagged = colon !== -1 && !path.slice(colon).includes('/');
  const name = tagged ? path.slice(0, colon) : path;
  const tag = tagged ? path.slice(colon + 1) : 'latest';
  try {
    const registry = hasRegistry ? parseRegistryHost(first) : 'docker.io';
    const hub = DOCKER_HUB_ALIASES.has(registry);
    const repository = parseRepository(hub && !name.includes('/') ? `library/${name}` : name);
    return {
      registry: hub ? 'docker.io' : registry,
      repository,
      tag: parseTag(tag),
      tagImplied: !tagged,
      digest,
    };
  } catch {
    return undefined;
  }
}
