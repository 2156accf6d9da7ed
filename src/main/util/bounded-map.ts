/**
 * Sets `key` in a map kept in order of use: the key moves to the end, and while the map is full the entry
 * set longest ago goes first. Memory stays bounded whatever keys peers or clients send.
 */
export function setBounded<K, V>(map: Map<K, V>, key: K, value: V, max: number): void {
  map.delete(key);
  for (const oldest of map.keys()) {
    if (map.size < max) break;
    map.delete(oldest);
  }
  map.set(key, value);
}
