/**
 * Number formatting for people: byte sizes in binary units (what GPU limits
 * are quoted in) and exact counts with thousands separators.
 */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/**
 * Formats a byte count in binary (1024-based) units with at most three
 * significant digits: 0 → "0 B", 49152 → "48 KiB", 2**30 → "1 GiB",
 * 1.5 * 2**20 → "1.5 MiB". A value just under a unit boundary rounds up
 * (2**31 − 4 → "2 GiB"); show `formatCount` beside it where the exact value matters.
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`formatBytes needs a finite byte count ≥ 0, got ${bytes}`);
  }
  let unit = 0;
  let value = bytes;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  let digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  let rounded = Number(value.toFixed(digits));
  // 1023.9 KiB rounds to "1024 KiB": carry into the next unit instead.
  if (rounded >= 1024 && unit < BYTE_UNITS.length - 1) {
    unit++;
    rounded = Number((rounded / 1024).toFixed(2));
    digits = 2;
  }
  return `${trimZeros(rounded.toFixed(digits))} ${BYTE_UNITS[unit]}`;
}

/** An exact integer with thousands separators, locale-independent: 2147483644 → "2,147,483,644". */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return String(n);
  return Math.round(n).toLocaleString('en-US');
}

function trimZeros(fixed: string): string {
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}
