import type { DoctorConfig } from './config/commands.js';
import type { DebugState } from './debug/state.js';
import { preflightObserver } from './node/operator.js';
import { MANIFEST_ACCEPT } from './oci/media-types.js';
import type { ImageReference } from './oci/reference.js';
import { evaluate } from './preflight/checks.js';
import { httpOrigin } from './util/url.js';

/** One line of the checklist. */
export interface DoctorCheck {
  check: string;
  ok: boolean;
  summary: string;
  fix?: string;
}

/** Where a listen address is reached from this machine: its own host, or loopback for every interface. */
function localOrigin(address: { host: string | undefined; port: number }): string {
  const host =
    address.host === undefined || address.host === '0.0.0.0'
      ? '127.0.0.1'
      : address.host === '::'
        ? '::1'
        : address.host;
  return httpOrigin(host, address.port);
}

async function get(url: string, timeoutMs: number, init: RequestInit = {}): Promise<Response> {
  return fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

const reason = (err: unknown): string => {
  const cause = (err as { cause?: { code?: string } }).cause?.code;
  return cause ?? (err as Error).message;
};

/**
 * Checks one node as an operator would from a shell on it: the same preflight the node runs, whether the
 * node answers and is ready, whether its members answer, and whether each `--ref` resolves through it.
 */
export async function doctor(config: DoctorConfig): Promise<DoctorCheck[]> {
  const registry = localOrigin(config.registryAddr);
  const metrics = localOrigin(config.metricsAddr);
  const state = await get(`${metrics}/debug/state`, config.timeout).then(
    async (response) => (response.ok ? ((await response.json()) as DebugState) : undefined),
    () => undefined,
  );
  const serving =
    state?.node.store.startsWith('embedded') === true || config.store === 'embedded'
      ? 'embedded'
      : 'containerd';
  const observer = preflightObserver(config, serving);
  const checks: DoctorCheck[] = [];
  try {
    checks.push(...evaluate(await observer.observe()));
  } finally {
    observer.close();
  }
  checks.push(await answers(registry, state, config.timeout));
  checks.push(await members(state, metrics, config.timeout));
  for (const ref of config.ref) checks.push(await resolves(ref, registry, metrics, config.timeout));
  return checks;
}

async function answers(
  registry: string,
  state: DebugState | undefined,
  timeoutMs: number,
): Promise<DoctorCheck> {
  try {
    const ready = await get(`${registry}/readyz`, timeoutMs);
    const api = await get(`${registry}/v2/`, timeoutMs);
    if (ready.status === 200 && api.status === 200)
      return { check: 'shoal_answers', ok: true, summary: `shoal answers at ${registry} and is ready` };
    if (api.status === 200 && state?.preflight?.ok === false)
      return {
        check: 'shoal_answers',
        ok: false,
        summary: `shoal answers at ${registry} but is not ready: a preflight check fails, and --strict-preflight keeps it out of service`,
        fix: 'fix the preflight checks above',
      };
    return {
      check: 'shoal_answers',
      ok: false,
      summary: `shoal answers at ${registry} but /readyz says ${ready.status} and /v2/ ${api.status}`,
      fix: 'a node is unready until it has joined its cluster and announced what it holds (or while it drains); its log and /debug say which',
    };
  } catch (err) {
    return {
      check: 'shoal_answers',
      ok: false,
      summary: `nothing answers at ${registry} (${reason(err)})`,
      fix: 'start shoal registry on this node, or give --registry-addr the address it listens on',
    };
  }
}

async function members(
  state: DebugState | undefined,
  metrics: string,
  timeoutMs: number,
): Promise<DoctorCheck> {
  if (state === undefined)
    return {
      check: 'members',
      ok: false,
      summary: `cannot list members: ${metrics}/debug/state does not answer`,
      fix: 'give --metrics-addr the node’s metrics address, and run the node with --debug-web (on by default)',
    };
  if (state.node.peerId === undefined)
    return {
      check: 'members',
      ok: true,
      summary: 'a standalone mirror (--bootstrap-kind none): no members to reach',
    };
  if (state.members.length === 0)
    return state.routing?.alone === true
      ? { check: 'members', ok: true, summary: 'a cluster of one: the bootstrap names no other node' }
      : {
          check: 'members',
          ok: false,
          summary: 'no members: this node has not met any other',
          fix: 'check the bootstrap (--bootstrap-kind and its flags), that the router port is reachable between nodes, and the private network key (--p2p-psk-file) is the same on every node',
        };
  const results = await Promise.all(
    state.members.map(async (member) => {
      if (member.registry === undefined) return `${member.id}: no registry address known`;
      try {
        const response = await get(`${member.registry}/livez`, timeoutMs);
        return response.ok ? undefined : `${member.id} at ${member.registry}: ${response.status}`;
      } catch (err) {
        return `${member.id} at ${member.registry}: ${reason(err)}`;
      }
    }),
  );
  const failed = results.filter((result): result is string => result !== undefined);
  if (failed.length === 0)
    return {
      check: 'members',
      ok: true,
      summary: `${state.members.length} members, every one answers on its registry port`,
    };
  return {
    check: 'members',
    ok: false,
    summary: `${failed.length} of ${state.members.length} members do not answer: ${failed.join('; ')}`,
    fix: 'members fetch from each other’s registry port: a NetworkPolicy or firewall between nodes must let it through',
  };
}

async function resolves(
  ref: ImageReference,
  registry: string,
  metrics: string,
  timeoutMs: number,
): Promise<DoctorCheck> {
  const name = `${ref.registry}/${ref.repository}${ref.digest === undefined ? `:${ref.tag}` : `@${ref.digest}`}`;
  const url = `${registry}/v2/${ref.repository}/manifests/${ref.digest ?? ref.tag}?ns=${encodeURIComponent(ref.registry)}`;
  try {
    const response = await get(url, timeoutMs, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
    if (response.status !== 200)
      return {
        check: `ref ${name}`,
        ok: false,
        summary: `${name} does not resolve through this node (${response.status}): containerd would fetch it from the registry itself`,
        fix: 'no node holds it (pull it once on any node), its registry is not mirrored (--mirrored-registries), or a --registry-filters pattern excludes it',
      };
    const digest = response.headers.get('docker-content-digest') ?? '?';
    const lookup = await get(`${metrics}/debug/lookup?ref=${encodeURIComponent(name)}`, timeoutMs)
      .then(async (answer) =>
        answer.ok ? ((await answer.json()) as { local: boolean; providers: unknown[] }) : undefined,
      )
      .catch(() => undefined);
    const where =
      lookup === undefined
        ? ''
        : ` (${lookup.local ? 'held here' : 'not held here'}, ${lookup.providers.length} peers advertise it)`;
    return { check: `ref ${name}`, ok: true, summary: `${name} resolves to ${digest}${where}` };
  } catch (err) {
    return {
      check: `ref ${name}`,
      ok: false,
      summary: `${name}: no answer (${reason(err)})`,
      fix: 'see shoal_answers',
    };
  }
}

/** The checklist as a person reads it. */
export function renderChecklist(checks: readonly DoctorCheck[]): string {
  const lines = checks.flatMap((check) => [
    `${check.ok ? '✓' : '✗'} ${check.check}: ${check.summary}`,
    ...(check.ok || check.fix === undefined ? [] : [`    fix: ${check.fix}`]),
  ]);
  const failed = checks.filter((check) => !check.ok).length;
  lines.push(
    '',
    failed === 0 ? `all ${checks.length} checks passed` : `${failed} of ${checks.length} checks failed`,
  );
  return `${lines.join('\n')}\n`;
}
