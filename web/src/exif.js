// The EXIF orientation (1..8) a photo declares, read from its bytes: JPEG (APP1 "Exif"),
// PNG (eXIf chunk) and WebP (EXIF chunk). 1 when absent or unreadable. pyhash's CLI reports a
// second, "raw" hash for orientations 2..8, and so does the worker.

function tiffOrientation(view, start) {
  if (start + 8 > view.byteLength) return 1;
  const order = view.getUint16(start);
  if (order !== 0x4949 && order !== 0x4d4d) return 1;
  const little = order === 0x4949;
  if (view.getUint16(start + 2, little) !== 42) return 1;
  const ifd = start + view.getUint32(start + 4, little);
  if (ifd + 2 > view.byteLength) return 1;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count; i++) {
    const entry = ifd + 2 + i * 12;
    if (entry + 12 > view.byteLength) return 1;
    if (view.getUint16(entry, little) === 0x0112) {
      const value = view.getUint16(entry + 8, little);
      return value >= 1 && value <= 8 ? value : 1;
    }
  }
  return 1;
}

function jpegOrientation(view) {
  let pos = 2;
  while (pos + 4 <= view.byteLength) {
    if (view.getUint8(pos) !== 0xff) return 1;
    const marker = view.getUint8(pos + 1);
    if (marker === 0xff) { pos += 1; continue; } // fill byte
    if (marker === 0xd9 || marker === 0xda) return 1; // end of image / start of scan: no EXIF before pixels
    const length = view.getUint16(pos + 2);
    if (marker === 0xe1 && pos + 10 <= view.byteLength && view.getUint32(pos + 4) === 0x45786966 && view.getUint16(pos + 8) === 0) {
      return tiffOrientation(view, pos + 10);
    }
    pos += 2 + length;
  }
  return 1;
}

function pngOrientation(view) {
  let pos = 8;
  while (pos + 8 <= view.byteLength) {
    const length = view.getUint32(pos);
    const type = view.getUint32(pos + 4);
    if (type === 0x65584966) return tiffOrientation(view, pos + 8); // eXIf
    if (type === 0x49454e44) return 1; // IEND
    pos += 12 + length;
  }
  return 1;
}

function webpOrientation(view) {
  let pos = 12;
  while (pos + 8 <= view.byteLength) {
    const type = view.getUint32(pos);
    const length = view.getUint32(pos + 4, true);
    if (type === 0x45584946) { // "EXIF"; some writers keep the "Exif\0\0" prefix
      const start = view.getUint32(pos + 8) === 0x45786966 ? pos + 14 : pos + 8;
      return tiffOrientation(view, start);
    }
    pos += 8 + length + (length & 1);
  }
  return 1;
}

/** Orientation of `file` whose format `kind` (from sniff) is known. Reads at most what it needs. */
export async function exifOrientation(file, kind) {
  // JPEG puts EXIF before the pixels; PNG's eXIf and WebP's EXIF chunk may follow them.
  const head = kind === "jpeg" ? file.slice(0, 1 << 18) : file;
  if (!["jpeg", "png", "webp"].includes(kind)) return 1;
  const view = new DataView(await head.arrayBuffer());
  try {
    if (kind === "jpeg") return jpegOrientation(view);
    if (kind === "png") return pngOrientation(view);
    return webpOrientation(view);
  } catch {
    return 1; // truncated structures: as if absent (RangeError from DataView)
  }
}
