/**
 * CRC-32 (the zlib/PNG polynomial) of bytes, for integrity checks on files Frugal writes and later reads
 * back (checkpoints, caches). It detects accidental damage (a disk or copy error, a stray write), not
 * tampering. Uses `node:zlib`'s native crc32 where this Node has it (20.15+, 22.2+), else a table.
 */
import * as zlib from 'node:zlib';

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;
let table: Uint32Array | undefined;

/** CRC-32 of `data`, continuing from `value` (the CRC of the bytes before it; 0 to start). */
export function crc32(data: Uint8Array, value = 0): number {
  return native ? native(data, value) >>> 0 : crc32Portable(data, value);
}

/** The same CRC by table lookup (the fallback; exported so a test can check it against the native one). */
export function crc32Portable(data: Uint8Array, value = 0): number {
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = table[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
