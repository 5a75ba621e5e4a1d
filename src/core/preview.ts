/**
 * A short, safe rendering of an untrusted JSON value for error messages.
 * JSON.stringify, String() and template literals all recurse through nested
 * lists, so a value nested a few thousand levels deep (which JSON.parse reads
 * happily) overflows the stack when a parser echoes it; this never recurses
 * past a few levels nor reads more than a few items.
 */
export function previewJson(value: unknown, max = 60): string {
  const text = render(value, 0);
  return text.length > max ? text.slice(0, max - 3) + '...' : text;
}

function render(value: unknown, depth: number): string {
  if (value === undefined) return 'undefined';
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'string') return JSON.stringify(value.length > 80 ? value.slice(0, 80) : value);
    if (typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value) ?? String(value);
    return typeof value;
  }
  if (depth >= 3) return Array.isArray(value) ? '[…]' : '{…}';
  if (Array.isArray(value)) {
    const items = value.slice(0, 6).map((v) => render(v, depth + 1));
    return `[${items.join(',')}${value.length > 6 ? ',…' : ''}]`;
  }
  const keys = Object.keys(value).slice(0, 4);
  const items = keys.map((k) => `${JSON.stringify(k.slice(0, 40))}:${render((value as Record<string, unknown>)[k], depth + 1)}`);
  return `{${items.join(',')}${Object.keys(value).length > 4 ? ',…' : ''}}`;
}
