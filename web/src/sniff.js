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
