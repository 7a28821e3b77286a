// Reading the video track of an ISO base media file (MP4, MOV, M4V, 3GP) without loading it:
// the box tree is walked through File.slice, only the `moov` box (the sample tables) is read
// whole, and each sample's bytes are read when the decoder needs them.
//
// What it returns mirrors what FFmpeg's mov demuxer gives the vPDQ reference
// (vpdq/cpp/hashing/ffmpegwrapper.cpp): the first video track, its samples in decode order with
// presentation times, the frames an edit list cuts away marked `discard`, and the average frame
// rate computed as FFmpeg computes avg_frame_rate (sample count x timescale / total duration).

export class Mp4Error extends Error {
  constructor(code, detail) {
    super(detail);
    this.code = code; // "not_mp4" | "no_video" | "fragmented" | "encrypted" | "damaged"
  }
}

const MAX_MOOV_BYTES = 64 << 20; // an hour of video has a few MB of sample tables

const fourcc = (view, at) => String.fromCharCode(view.getUint8(at), view.getUint8(at + 1), view.getUint8(at + 2), view.getUint8(at + 3));

function u64(view, at) {
  const value = view.getUint32(at) * 2 ** 32 + view.getUint32(at + 4);
  if (!Number.isSafeInteger(value)) throw new Mp4Error("damaged", "64-bit value out of range");
  return value;
}

/** The box header at `at`: {type, size (header included), header (its length)}; `remaining` is
 * how many bytes the parent (or the file) has from `at` on, which a size of 0 means. */
function boxHeader(view, at, remaining) {
  let size = view.getUint32(at);
  const type = fourcc(view, at + 4);
  let header = 8;
  if (size === 1) {
    if (remaining < 16 || view.byteLength < at + 16) throw new Mp4Error("damaged", `box ${type} is cut short`);
    size = u64(view, at + 8);
    header = 16;
  } else if (size === 0) {
    size = remaining;
  }
  if (size < header) throw new Mp4Error("damaged", `box ${type} has size ${size}`);
  return { type, size, header };
}

/** An mvhd's or mdhd's timescale: after version and flags, then creation and modification
 * times (64-bit in version 1, else 32-bit). */
const timescaleOf = (view, box) => view.getUint32(box.start + (view.getUint8(box.start) === 1 ? 20 : 12));

/** Child boxes of the box content view[start, end): [{type, start (content), end}]. */
function children(view, start, end) {
  const boxes = [];
  let pos = start;
  while (pos + 8 <= end) {
    const { type, size, header } = boxHeader(view, pos, end - pos);
    if (pos + size > end) throw new Mp4Error("damaged", `box ${type} overruns its parent`);
    boxes.push({ type, start: pos + header, end: pos + size });
    pos += size;
  }
  return boxes;
}

const child = (view, box, type) => children(view, box.start, box.end).find((b) => b.type === type) ?? null;

function path(view, box, ...types) {
  let current = box;
  for (const type of types) {
    current = current && child(view, current, type);
  }
  return current;
}

/** Finds the top-level `moov` box by reading box headers only; returns its bytes. */
async function readMoov(file) {
  let pos = 0;
  let sawFtyp = false;
  for (let boxes = 0; pos + 8 <= file.size && boxes < 10000; boxes++) {
    const head = new DataView(await file.slice(pos, pos + 16).arrayBuffer());
    const type = fourcc(head, 4);
    if (boxes === 0 && !["ftyp", "moov", "mdat", "free", "skip", "wide", "pnot"].includes(type)) {
      throw new Mp4Error("not_mp4", `first box is ${JSON.stringify(type)}`);
    }
    sawFtyp ||= type === "ftyp";
    const { size, header } = boxHeader(head, 0, file.size - pos);
    if (type === "moov") {
      if (size > MAX_MOOV_BYTES) throw new Mp4Error("damaged", `moov of ${size} bytes`);
      if (pos + size > file.size) throw new Mp4Error("damaged", "the file is cut short inside its index (moov)");
      const bytes = await file.slice(pos, pos + size).arrayBuffer();
      return { view: new DataView(bytes), box: { type, start: header, end: size } };
    }
    pos += size;
  }
  throw new Mp4Error(sawFtyp ? "damaged" : "not_mp4", "no moov box: the file has no index of its frames (cut short?)");
}

function hex2(value) {
  return value.toString(16).padStart(2, "0");
}

function reverseBits32(value) {
  let out = 0;
  for (let i = 0; i < 32; i++) out = (out << 1) | ((value >>> i) & 1);
  return out >>> 0;
}

/** The WebCodecs codec string and decoder description for a visual sample entry. */
function codecOf(view, entry) {
  const config = (type) => children(view, entry.start + 78, entry.end).find((b) => b.type === type);
  const bytes = (box) => new Uint8Array(view.buffer, view.byteOffset + box.start, box.end - box.start);
  switch (entry.type) {
    case "avc1": case "avc3": {
      const avcC = config("avcC");
      if (!avcC) throw new Mp4Error("damaged", "H.264 track without avcC");
      const b = bytes(avcC);
      return { codec: `${entry.type}.${hex2(b[1])}${hex2(b[2])}${hex2(b[3])}`, description: b.slice() };
    }
    case "hvc1": case "hev1": {
      const hvcC = config("hvcC");
      if (!hvcC) throw new Mp4Error("damaged", "HEVC track without hvcC");
      const b = bytes(hvcC);
      const space = ["", "A", "B", "C"][b[1] >> 6];
      const tier = b[1] & 0x20 ? "H" : "L";
      const compat = reverseBits32(new DataView(b.buffer, b.byteOffset + 2, 4).getUint32(0)).toString(16);
      const constraints = [...b.subarray(6, 12)];
      while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
      const tail = constraints.map((c) => "." + c.toString(16).toUpperCase()).join("");
      return { codec: `${entry.type}.${space}${b[1] & 0x1f}.${compat}.${tier}${b[12]}${tail}`, description: b.slice() };
    }
    case "vp09": {
      const vpcC = config("vpcC");
      if (!vpcC) return { codec: "vp09.00.10.08" };
      const b = bytes(vpcC); // full box: version and flags first
      return { codec: `vp09.${hex2(b[4])}.${hex2(b[5])}.${hex2(b[6] >> 4)}` };
    }
    case "av01": {
      const av1C = config("av1C");
      if (!av1C) throw new Mp4Error("damaged", "AV1 track without av1C");
      const b = bytes(av1C);
      const depth = b[2] & 0x40 ? (b[2] & 0x20 ? 12 : 10) : 8;
      return {
        codec: `av01.${b[1] >> 5}.${String(b[1] & 0x1f).padStart(2, "0")}${b[2] & 0x80 ? "H" : "M"}.${String(depth).padStart(2, "0")}`,
        description: b.slice(),
      };
    }
    case "encv":
      throw new Mp4Error("encrypted", "the video track is encrypted (DRM)");
    default:
      return { codec: entry.type }; // e.g. mp4v, s263: the decoder will say it cannot
  }
}

function fullBoxEntries(view, box) {
  return { version: view.getUint8(box.start), count: view.getUint32(box.start + 4), at: box.start + 8 };
}

/** The sample table of one track: [{offset, size, dts, cts, duration, key}] in decode order. */
function samplesOf(view, stbl) {
  const box = (type) => child(view, stbl, type);
  const stsz = box("stsz");
  const stz2 = box("stz2");
  const sizes = [];
  if (stsz) {
    const fixed = view.getUint32(stsz.start + 4);
    const count = view.getUint32(stsz.start + 8);
    if (!fixed && stsz.start + 12 + 4 * count > stsz.end) throw new Mp4Error("damaged", "stsz is cut short");
    for (let i = 0; i < count; i++) sizes.push(fixed || view.getUint32(stsz.start + 12 + 4 * i));
  } else if (stz2) {
    const field = view.getUint8(stz2.start + 7);
    const count = view.getUint32(stz2.start + 8);
    for (let i = 0; i < count; i++) {
      const at = stz2.start + 12;
      if (field === 16) sizes.push(view.getUint16(at + 2 * i));
      else if (field === 8) sizes.push(view.getUint8(at + i));
      else sizes.push((view.getUint8(at + (i >> 1)) >> (i & 1 ? 0 : 4)) & 0xf);
    }
  }
  const n = sizes.length;
  if (n === 0) return [];

  // Chunk offsets, and which samples each chunk holds (stsc runs).
  const stco = box("stco");
  const co64 = box("co64");
  const chunkOffsets = [];
  if (stco || co64) {
    const { count, at } = fullBoxEntries(view, stco ?? co64);
    for (let i = 0; i < count; i++) chunkOffsets.push(stco ? view.getUint32(at + 4 * i) : u64(view, at + 8 * i));
  }
  const stsc = box("stsc");
  if (!stsc || !chunkOffsets.length) throw new Mp4Error("damaged", "no chunk table");
  const runs = [];
  {
    const { count, at } = fullBoxEntries(view, stsc);
    for (let i = 0; i < count; i++) runs.push({ first: view.getUint32(at + 12 * i), perChunk: view.getUint32(at + 12 * i + 4) });
  }
  const samples = new Array(n);
  let s = 0;
  for (let r = 0; r < runs.length && s < n; r++) {
    const lastChunk = r + 1 < runs.length ? runs[r + 1].first - 1 : chunkOffsets.length;
    for (let c = runs[r].first; c <= lastChunk && s < n; c++) {
      let offset = chunkOffsets[c - 1];
      if (offset === undefined) throw new Mp4Error("damaged", "stsc refers to a missing chunk");
      for (let k = 0; k < runs[r].perChunk && s < n; k++, s++) {
        samples[s] = { offset, size: sizes[s], dts: 0, cts: 0, duration: 0, key: true };
        offset += sizes[s];
      }
    }
  }
  if (s < n) throw new Mp4Error("damaged", "the chunk table covers fewer samples than the size table");

  // Decode times (stts), presentation offsets (ctts), sync samples (stss).
  const stts = box("stts");
  if (!stts) throw new Mp4Error("damaged", "no time-to-sample table");
  let dts = 0;
  s = 0;
  {
    const { count, at } = fullBoxEntries(view, stts);
    for (let i = 0; i < count && s < n; i++) {
      const times = view.getUint32(at + 8 * i);
      const delta = view.getUint32(at + 8 * i + 4);
      for (let k = 0; k < times && s < n; k++, s++) {
        samples[s].dts = dts;
        samples[s].duration = delta;
        dts += delta;
      }
    }
  }
  for (; s < n; s++) samples[s].dts = dts; // a short stts: FFmpeg keeps the last time
  const ctts = box("ctts");
  if (ctts) {
    const { count, at } = fullBoxEntries(view, ctts);
    s = 0;
    for (let i = 0; i < count && s < n; i++) {
      const times = view.getUint32(at + 8 * i);
      const offset = view.getInt32(at + 8 * i + 4); // signed in practice, whatever the version
      for (let k = 0; k < times && s < n; k++, s++) samples[s].cts = offset;
    }
  }
  for (const sample of samples) sample.cts += sample.dts;
  const stss = box("stss");
  if (stss) {
    for (const sample of samples) sample.key = false;
    const { count, at } = fullBoxEntries(view, stss);
    for (let i = 0; i < count; i++) {
      const number = view.getUint32(at + 4 * i);
      if (number >= 1 && number <= n) samples[number - 1].key = true;
    }
  }
  return samples;
}

/** FFmpeg's avg_frame_rate for a mov track (libavformat/mov.c, mov_read_stts + mov_read_trak). */
function averageFrameRate(view, stbl, timescale) {
  const stts = child(view, stbl, "stts");
  const { count, at } = fullBoxEntries(view, stts);
  let duration = 0;
  let frames = 0;
  for (let i = 0; i < count; i++) {
    const times = view.getUint32(at + 8 * i);
    let delta = view.getUint32(at + 8 * i + 4);
    // FFmpeg tames an absurd last duration (some muxers stretch the final frame).
    if (i + 1 === count && i && times === 1 && frames > 100 && delta / 10 > duration / frames) {
      delta = Math.floor(duration / frames);
    }
    duration += delta * times;
    frames += times;
  }
  return duration > 0 && frames > 0 ? (frames * timescale) / duration : null;
}

/** The first non-empty edit: [start, end) in media time units (end null: to the end). */
function editWindow(view, trak, movieTimescale, mediaTimescale) {
  const elst = path(view, trak, "edts", "elst");
  if (!elst) return null;
  const { version, count, at } = fullBoxEntries(view, elst);
  const size = version === 1 ? 20 : 12;
  for (let i = 0; i < count; i++) {
    const entry = at + size * i;
    const duration = version === 1 ? u64(view, entry) : view.getUint32(entry);
    const mediaTime = version === 1 ? Number(view.getBigInt64(entry + 8)) : view.getInt32(entry + 4);
    if (mediaTime < 0) continue; // an empty edit: a delay before the track starts
    const length = duration ? Math.round((duration * mediaTimescale) / movieTimescale) : null;
    return { start: mediaTime, end: length === null ? null : mediaTime + length };
  }
  return null;
}

/**
 * The first video track of `file`: {codec, description?, width, height, timescale, frameRate,
 * samples}. Each sample: {offset, size, dts, cts, duration, key, discard} with cts relative to
 * the edit list's start (so the first shown frame is at 0). Throws Mp4Error.
 */
export async function readVideoTrack(file) {
  const { view, box: moov } = await readMoov(file);
  const mvhd = child(view, moov, "mvhd");
  const movieTimescale = mvhd ? timescaleOf(view, mvhd) : 1000;
  const fragmented = Boolean(child(view, moov, "mvex"));
  for (const trak of children(view, moov.start, moov.end).filter((b) => b.type === "trak")) {
    const mdia = child(view, trak, "mdia");
    const hdlr = mdia && child(view, mdia, "hdlr");
    if (!hdlr || fourcc(view, hdlr.start + 8) !== "vide") continue;
    const mdhd = child(view, mdia, "mdhd");
    const timescale = timescaleOf(view, mdhd);
    const stbl = path(view, mdia, "minf", "stbl");
    const stsd = stbl && child(view, stbl, "stsd");
    if (!stsd || !timescale) throw new Mp4Error("damaged", "video track without sample description");
    const [entry] = children(view, stsd.start + 8, stsd.end);
    if (!entry) throw new Mp4Error("damaged", "empty sample description");
    const width = view.getUint16(entry.start + 24);
    const height = view.getUint16(entry.start + 26);
    const { codec, description } = codecOf(view, entry);
    const samples = samplesOf(view, stbl);
    if (!samples.length) {
      throw new Mp4Error(fragmented ? "fragmented" : "damaged", fragmented ? "fragmented MP4 (frames in moof boxes)" : "the video track has no frames");
    }
    const edit = editWindow(view, trak, movieTimescale, timescale);
    const start = edit ? edit.start : 0;
    for (const sample of samples) {
      // FFmpeg (mov_fix_index) drops frames shown before the edit's start or from its end on.
      sample.discard = Boolean(edit) && (sample.cts < edit.start || (edit.end !== null && sample.cts >= edit.end));
      sample.cts -= start;
    }
    const last = samples.reduce((max, s) => Math.max(max, s.offset + s.size), 0);
    if (last > file.size) throw new Mp4Error("damaged", "the file is cut short: frames are missing from its end");
    return { codec, description, width, height, timescale, frameRate: averageFrameRate(view, stbl, timescale), samples };
  }
  throw new Mp4Error("no_video", "no video track");
}
