/**
 * A ZIP archive of a few files, stored without compression (method 0): the
 * page hands an AutoAWQ checkpoint (config.json, model.safetensors, the
 * tokenizer) over as one download. Quantized weights barely compress, so
 * storing costs little. Layout (PKWARE APPNOTE 4.3): a local header + data
 * per file, then the central directory and its end record; CRC-32 of each
 * file; sizes under 4 GiB (no ZIP64).
 */

let crcTable: Uint32Array | null = null;

export function crc32(bytes: Uint8Array): number {
  const table = (crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  }));
  let crc = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) crc = table[(crc ^ bytes[i]) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

export interface ZipEntry {
  name: string;
  bytes: Uint8Array;
}

export function zipStore(entries: ZipEntry[]): Uint8Array {
  const encoder = new TextEncoder();
  const names = entries.map((e) => encoder.encode(e.name));
  const total = entries.reduce((s, e, i) => s + 30 + names[i].length + e.bytes.length + 46 + names[i].length, 22);
  if (total >= 2 ** 32) throw new Error(`the archive would be ${(total / 2 ** 30).toFixed(1)} GiB; a plain ZIP holds under 4 GiB — export from the command line instead (npm run lab -- export).`);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let at = 0;
  const central: { offset: number; crc: number }[] = [];
  entries.forEach((e, i) => {
    const crc = crc32(e.bytes);
    central.push({ offset: at, crc });
    view.setUint32(at, 0x04034b50, true); // local file header
    view.setUint16(at + 4, 20, true); // version needed
    view.setUint16(at + 6, 0x0800, true); // UTF-8 names
    view.setUint16(at + 8, 0, true); // stored
    view.setUint32(at + 10, 0x00210000, true); // 1980-01-01 00:00
    view.setUint32(at + 14, crc, true);
    view.setUint32(at + 18, e.bytes.length, true);
    view.setUint32(at + 22, e.bytes.length, true);
    view.setUint16(at + 26, names[i].length, true);
    view.setUint16(at + 28, 0, true);
    out.set(names[i], at + 30);
    out.set(e.bytes, at + 30 + names[i].length);
    at += 30 + names[i].length + e.bytes.length;
  });
  const directoryStart = at;
  entries.forEach((e, i) => {
    view.setUint32(at, 0x02014b50, true); // central directory header
    view.setUint16(at + 4, 20, true); // version made by
    view.setUint16(at + 6, 20, true);
    view.setUint16(at + 8, 0x0800, true);
    view.setUint16(at + 10, 0, true);
    view.setUint32(at + 12, 0x00210000, true);
    view.setUint32(at + 16, central[i].crc, true);
    view.setUint32(at + 20, e.bytes.length, true);
    view.setUint32(at + 24, e.bytes.length, true);
    view.setUint16(at + 28, names[i].length, true);
    // extra, comment, disk, internal and external attributes: 0
    view.setUint32(at + 42, central[i].offset, true);
    out.set(names[i], at + 46);
    at += 46 + names[i].length;
  });
  view.setUint32(at, 0x06054b50, true); // end of central directory
  view.setUint16(at + 8, entries.length, true);
  view.setUint16(at + 10, entries.length, true);
  view.setUint32(at + 12, at - directoryStart, true);
  view.setUint32(at + 16, directoryStart, true);
  return out;
}
