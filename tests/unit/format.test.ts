import { describe, expect, it } from 'vitest';
import { formatBytes, formatCount } from '../../src/core/format';

describe('formatBytes', () => {
  it('keeps small counts in bytes', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1)).toBe('1 B');
    expect(formatBytes(1023)).toBe('1023 B');
  });

  it('uses binary units and trims trailing zeros', () => {
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(48 * 1024)).toBe('48 KiB');
    expect(formatBytes(1.5 * 2 ** 20)).toBe('1.5 MiB');
    expect(formatBytes(2 ** 30)).toBe('1 GiB');
    expect(formatBytes(2 ** 40)).toBe('1 TiB');
  });

  it('shows at most three significant digits', () => {
    expect(formatBytes(1234567)).toBe('1.18 MiB');
    expect(formatBytes(12.345 * 2 ** 20)).toBe('12.3 MiB');
    expect(formatBytes(123.45 * 2 ** 30)).toBe('123 GiB');
  });

  it('rounds a value just under a boundary into the next unit', () => {
    // maxStorageBufferBindingSize on many adapters: 2 GiB − 4 bytes.
    expect(formatBytes(2 ** 31 - 4)).toBe('2 GiB');
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB');
  });

  it('refuses negative and non-finite input', () => {
    expect(() => formatBytes(-1)).toThrow(RangeError);
    expect(() => formatBytes(Number.NaN)).toThrow(/finite byte count/);
  });
});

describe('formatCount', () => {
  it('groups thousands with commas regardless of locale', () => {
    expect(formatCount(0)).toBe('0');
    expect(formatCount(49152)).toBe('49,152');
    expect(formatCount(2 ** 31 - 4)).toBe('2,147,483,644');
  });
});
