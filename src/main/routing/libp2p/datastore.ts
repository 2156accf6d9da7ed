import { BaseDatastore } from 'datastore-core/base';
import type { Key, Pair, Query } from 'interface-datastore';
import { NotFoundError } from 'interface-store';

/** A key's place in the tree: its children by path segment, and its own entry when it holds one. */
class PathNode {
  readonly children = new Map<string, PathNode>();
  entry: Pair | undefined;
  /** The longest child name this node ever had: a prefix at least this long can match one child at most. */
  longestChild = 0;
}

/**
 * The datastore libp2p keeps its peer store and kad-dht its provider records in, held in memory like
 * libp2p's default `MemoryDatastore`, and indexed by path. kad-dht answers every lookup from a prefix query
 * (`/dht/provider/<cid>`); `MemoryDatastore` answers one by walking every key it holds and building a
 * `Key` for each: with 40,000 provider records, 50 ms of the main thread per lookup. Here a prefix query
 * walks down the path and visits only the keys below it.
 */
export class IndexedDatastore extends BaseDatastore {
  readonly #root = new PathNode();
  #size = 0;

  /** Keys held. */
  get size(): number {
    return this.#size;
  }

  override put(key: Key, value: Uint8Array): Key {
    let node = this.#root;
    for (const segment of segments(key.toString())) {
      let child = node.children.get(segment);
      if (child === undefined) {
        child = new PathNode();
        node.children.set(segment, child);
        node.longestChild = Math.max(node.longestChild, segment.length);
      }
      node = child;
    }
    if (node.entry === undefined) this.#size++;
    node.entry = { key, value };
    return key;
  }

  override get(key: Key): Uint8Array {
    const entry = this.#find(key.toString())?.entry;
    if (entry === undefined) throw new NotFoundError();
    return entry.value;
  }

  override has(key: Key): boolean {
    return this.#find(key.toString())?.entry !== undefined;
  }

  override delete(key: Key): void {
    const path = segments(key.toString());
    const trail: PathNode[] = [this.#root];
    for (const segment of path) {
      const next = trail[trail.length - 1]?.children.get(segment);
      if (next === undefined) return;
      trail.push(next);
    }
    const node = trail[trail.length - 1] as PathNode;
    if (node.entry === undefined) return;
    node.entry = undefined;
    this.#size--;
    // Drop the nodes left with neither an entry nor children, from the deepest up.
    for (let depth = path.length; depth > 0; depth--) {
      const child = trail[depth] as PathNode;
      if (child.entry !== undefined || child.children.size > 0) break;
      (trail[depth - 1] as PathNode).children.delete(path[depth - 1] as string);
    }
  }

  override async *_all(query: Query): AsyncGenerator<Pair> {
    for (const node of this.#under(query.prefix)) yield* entries(node);
  }

  override async *_allKeys(query: { prefix?: string }): AsyncGenerator<Key> {
    for (const node of this.#under(query.prefix)) for (const { key } of entries(node)) yield key;
  }

  /**
   * The subtrees that hold every key starting with `prefix` (and possibly a few more, which the caller's
   * prefix filter drops): for `/a/b/c`, the child `c` of `/a/b` and any sibling whose name starts with `c`.
   */
  #under(prefix: string | undefined): PathNode[] {
    if (prefix === undefined || prefix === '' || prefix === '/') return [this.#root];
    if (!prefix.startsWith('/')) return [];
    const cut = prefix.lastIndexOf('/');
    const parent = this.#find(prefix.slice(0, cut));
    if (parent === undefined) return [];
    const rest = prefix.slice(cut + 1);
    if (rest === '') return [parent];
    const exact = parent.children.get(rest);
    // No child name is longer than `rest`: only `rest` itself can start with it.
    if (rest.length >= parent.longestChild) return exact === undefined ? [] : [exact];
    return [...parent.children].filter(([name]) => name.startsWith(rest)).map(([, node]) => node);
  }

  #find(path: string): PathNode | undefined {
    let node: PathNode | undefined = this.#root;
    for (const segment of segments(path)) {
      node = node.children.get(segment);
      if (node === undefined) return undefined;
    }
    return node;
  }
}

/** The path segments of a key string: `/a/b` → a, b. */
function segments(path: string): string[] {
  return path.split('/').filter((segment) => segment !== '');
}

/** Every entry at or below `node`. */
function* entries(node: PathNode): Generator<Pair> {
  if (node.entry !== undefined) yield node.entry;
  for (const child of node.children.values()) yield* entries(child);
}
