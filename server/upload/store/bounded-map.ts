// The store's small memories (owners read lately, uploads just created or just written) are maps
// that forget their oldest entry beyond a limit: a miss only costs a read of the info file.

/** Sets `key` and drops the oldest entry when the map holds more than `limit`. */
export function remember<K, V>(map: Map<K, V>, key: K, value: V, limit: number): void {
  map.set(key, value);
  if (map.size > limit) map.delete(map.keys().next().value!);
}
