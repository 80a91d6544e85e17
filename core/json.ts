/** True when `document` has the nested own field `path` (e.g. ['order', 'id']), whatever its value. */
export function hasJsonField(document: unknown, path: readonly string[]): boolean {
  let cursor = document;
  for (const key of path) {
    if (typeof cursor !== 'object' || cursor === null || Array.isArray(cursor) || !Object.hasOwn(cursor, key))
      return false;
    cursor = (cursor as Record<string, unknown>)[key];
  }
  return true;
}
