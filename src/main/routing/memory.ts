import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  decodeMessage,
  encodeMessage,
  MessageDispatch,
  type MessageHandler,
  type MessageKind,
  type PeerMessage,
} from './messages.js';
import type { Provider, Router } from './router.js';

/** The shared "network" of in-memory routers: who is up, and who advertised what. */
export class MemoryNetwork {
  readonly members = new Map<string, MemoryRouter>();
  readonly records = new Map<string, Set<string>>();
}

/** In-process router for unit tests; behaves like the libp2p router behind the same interface. */
export class MemoryRouter implements Router {
  readonly id: string;
  readonly registry: string;
  readonly #network: MemoryNetwork;
  /** Stands in for the identity key: only this router and the network's verifier know it. */
  readonly #secret = randomBytes(32);
  readonly #messages = new MessageDispatch();
  #started = false;

  constructor(deps: { network: MemoryNetwork }, init: { id: string; registry: string }) {
    this.#network = deps.network;
    this.id = init.id;
    this.registry = init.registry;
  }

  async start(): Promise<void> {
    this.#started = true;
    this.#network.members.set(this.id, this);
  }

  async stop(): Promise<void> {
    this.#started = false;
    this.#network.members.delete(this.id);
  }

  ready(): boolean {
    return this.#started && [...this.#network.members.keys()].some((id) => id !== this.id);
  }

  alone(): boolean {
    return this.#started && !this.ready();
  }

  async *lookup(key: string, signal: AbortSignal): AsyncIterable<Provider> {
    if (!this.#started) return;
    for (const id of this.#network.records.get(key) ?? []) {
      if (signal.aborted) return;
      const member = this.#network.members.get(id);
      // Records of nodes that are gone are never handed out.
      if (id !== this.id && member !== undefined) yield { id, registry: member.registry };
    }
  }

  async advertise(keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const holders = this.#network.records.get(key) ?? new Set<string>();
      holders.add(this.id);
      this.#network.records.set(key, holders);
    }
  }

  async withdraw(keys: readonly string[]): Promise<void> {
    for (const key of keys) this.#network.records.get(key)?.delete(this.id);
  }

  get selfId(): string {
    return this.id;
  }

  members(): string[] {
    if (!this.#started) return [];
    return [...this.#network.members.keys()].filter((id) => id !== this.id);
  }

  current(provider: Provider): Provider | undefined {
    if (!this.#started) return undefined;
    const member = this.#network.members.get(provider.id);
    return member === undefined ? undefined : { id: provider.id, registry: member.registry };
  }

  async tell(id: string, message: PeerMessage, signal: AbortSignal): Promise<boolean> {
    const member = this.#network.members.get(id);
    if (!this.#started || member === undefined || id === this.id || signal.aborted) return false;
    // Through the same encoding as the wire, so a fake never accepts what the real channel would refuse.
    const decoded = decodeMessage(new TextDecoder().decode(encodeMessage(message)).trimEnd());
    if (decoded === undefined) return false;
    return member.#messages.dispatch(this.id, decoded).catch(() => false);
  }

  onMessage<K extends MessageKind>(kind: K, handler: MessageHandler<K>): void {
    this.#messages.on(kind, handler);
  }

  async sign(payload: Uint8Array): Promise<Uint8Array> {
    return createHmac('sha256', this.#secret).update(payload).digest();
  }

  async verifyMember(id: string, payload: Uint8Array, signature: Uint8Array): Promise<boolean> {
    const member = this.#network.members.get(id);
    if (member === undefined || id === this.id) return false;
    const expected = await member.sign(payload);
    return expected.length === signature.length && timingSafeEqual(expected, signature);
  }

  async provider(id: string): Promise<Provider | undefined> {
    const member = this.#network.members.get(id);
    return !this.#started || member === undefined || id === this.id
      ? undefined
      : { id, registry: member.registry };
  }
}
