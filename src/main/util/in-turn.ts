/** The values of `pending` in the order they settle (a rejection is thrown where it comes). */
export async function* inTurn<T>(pending: readonly Promise<T>[]): AsyncGenerator<T> {
  const left = new Map(pending.map((promise, i) => [i, promise.then((value) => ({ i, value }))]));
  while (left.size > 0) {
    const { i, value } = await Promise.race(left.values());
    left.delete(i);
    yield value;
  }
}
