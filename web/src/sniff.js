// What a file is, from its first bytes (the browser's file.type comes from the name only).

const ascii = (bytes, start, end) => String.fromCharCode(...bytes.subarray(start, end));

/** "jpeg", "png", "gif", "webp", "bmp", "avif", "heic", "tiff", "ico", "video", or null. */
export function sniff(bytes) {
  const b = bytes;
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 8 && ascii(b, 0, 8) === "\x89PNG\r\n\x1a\n") return "png";
  if (b.length >= 6 && (ascii(b, 0, 6) === "GIF87a" || ascii(b, 0, 6) === "GIF89a")) return "gif";
  if (b.length >= 12 && ascii(b, 0, 4) === "RIFF") {
    const kind = ascii(b, 8, 12);
    if (kind === "WEBP") return "webp";
    if (kind === "AVI ") return "video";
  }
  if (b.length >= 2 && ascii(b, 0, 2) === "BM") return "bmp";
  if (b.length >= 4 && (ascii(b, 0, 4) === "II*\0" || ascii(b, 0, 4) === "MM\0*")) return "tiff";
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 1 && b[3] === 0) return "ico";
  if (b.length >= 4 && b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3) return "video"; // Matroska/WebM
  if (b.length >= 12 && ascii(b, 4, 8) === "ftyp") {
    const brand = ascii(b, 8, 12);
    if (brand === "avif" || brand === "avis") return "avif";
    if (["heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1"].includes(brand)) return "heic";
    return "video"; // isom, mp41, mp42, qt, 3gp4, M4V ...
  }
  if (b.length >= 4 && (ascii(b, 0, 4) === "\x00\x00\x01\xba" || ascii(b, 0, 4) === "\x00\x00\x01\xb3")) return "video"; // MPEG-PS
  return null;
}

// --- dimensions from the header, before any decoding -------------------------------------------

const JPEG_SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

async function readAt(file, start, length) {
  return new DataView(await file.slice(start, start + length).arrayBuffer());
}

async function jpegDimensions(file) {
  // Walk the segments (APPn, DQT, ...) to the frame header; large EXIF blocks are skipped by
  // their length, reading only each segment's 4-byte header.
  let pos = 2;
  for (let segments = 0; segments < 1000 && pos + 4 <= file.size; segments++) {
    const header = await readAt(file, pos, 10);
    if (header.byteLength < 4 || header.getUint8(0) !== 0xff) return null;
    const marker = header.getUint8(1);
    if (marker === 0xff) { pos += 1; continue; } // fill byte
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { pos += 2; continue; }
    if (marker === 0xd9 || marker === 0xda) return null; // no frame header before the pixels
    if (JPEG_SOF.has(marker)) {
      if (header.byteLength < 9) return null;
      return { width: header.getUint16(7), height: header.getUint16(5) };
    }
    pos += 2 + header.getUint16(2);
  }
  return null;
}

function webpDimensions(view) {
  if (view.byteLength < 30) return null;
  const chunk = ascii(new Uint8Array(view.buffer, view.byteOffset, view.byteLength), 12, 16);
  if (chunk === "VP8 ") return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  if (chunk === "VP8L") {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === "VP8X") {
    const u24 = (at) => view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getUint8(at + 2) << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  return null;
}

function ispeDimensions(bytes) {
  // HEIF/AVIF: every image item has an 'ispe' property (width, height); the largest is the
  // whole picture (tiles of a grid are smaller).
  let best = null;
  for (let i = 4; i + 16 <= bytes.length; i++) {
    if (bytes[i] !== 0x69 || ascii(bytes, i, i + 4) !== "ispe") continue; // 'i'
    const view = new DataView(bytes.buffer, bytes.byteOffset + i + 8, 8);
    const size = { width: view.getUint32(0), height: view.getUint32(4) };
    if (!best || size.width * size.height > best.width * best.height) best = size;
  }
  return best;
}

/** {width, height} of an image of `format` (from sniff) read from its header, or null when the
 * format or file does not say. Reads a few KB, never the pixels. */
export async function imageDimensions(file, format) {
  if (format === "jpeg") return jpegDimensions(file);
  const head = await readAt(file, 0, format === "avif" || format === "heic" ? 1 << 16 : 64);
  const bytes = new Uint8Array(head.buffer);
  if (format === "png") { // IHDR must come first: anything else is a damaged file, for the decoder to say
    return head.byteLength >= 24 && ascii(bytes, 12, 16) === "IHDR" ? { width: head.getUint32(16), height: head.getUint32(20) } : null;
  }
  if (format === "gif" && head.byteLength >= 10) return { width: head.getUint16(6, true), height: head.getUint16(8, true) };
  if (format === "bmp" && head.byteLength >= 26 && [12, 40, 52, 56, 64, 108, 124].includes(head.getUint32(14, true))) {
    const core = head.getUint32(14, true) === 12; // OS/2 BITMAPCOREHEADER: 16-bit sizes
    return core ? { width: head.getUint16(18, true), height: head.getUint16(20, true) }
      : { width: Math.abs(head.getInt32(18, true)), height: Math.abs(head.getInt32(22, true)) };
  }
  if (format === "webp") return webpDimensions(head);
  if (format === "avif" || format === "heic") return ispeDimensions(bytes);
  return null;
}
