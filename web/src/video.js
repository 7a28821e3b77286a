// vPDQ frames of a video in the hashing worker: the MP4 is demuxed by mp4.js, decoded by the
// browser's WebCodecs VideoDecoder, and every decoded frame is offered, in output order, to
// pyhash.vpdq.VpdqBuilder (through `builder`), which picks one a second exactly as Meta's
// reference does (frame n when n % int(frame rate) == 0). Picked frames are converted to RGB
// here and hashed with PDQ by pyhash; the rest are closed at once.
//
// Colour: the reference converts with swscale ignoring the file's colour tags: BT.601
// coefficients, limited range for yuv420p. The browser's own conversion follows the tags (or
// guesses BT.709 for HD), so planar frames are converted here the reference's way instead.
import { Mp4Error, readVideoTrack } from "./mp4.js";

export class VideoError extends Error {
  constructor(code, detail) {
    super(detail);
    this.code = code; // video_unsupported_browser | video_container_unsupported | video_codec_unsupported | video_damaged
  }
}

const READ_BATCH_BYTES = 4 << 20; // consecutive samples are read from the file in one slice
const MAX_DECODE_QUEUE = 8; // chunks handed to the decoder ahead of its output
const MAX_OPEN_FRAMES = 4; // decoded frames waiting for the sampler before feeding pauses
const MIN_FRAME_SIDE = 5;

// BT.601 limited range to RGB in 16.16 fixed point (what swscale's default table computes).
const CY = Math.round(1.164383 * 65536);
const CRV = Math.round(1.596027 * 65536);
const CGU = Math.round(0.391762 * 65536);
const CGV = Math.round(0.812968 * 65536);
const CBU = Math.round(2.017232 * 65536);
const HALF = 32768;

function clamp255(v) {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** RGB24 of a planar/semi-planar 8-bit frame copied out with copyTo (layout per plane). */
function yuvToRgb(data, layout, format, width, height) {
  const rgb = new Uint8Array(width * height * 3);
  const [yl, ul, vl] = layout;
  const nv12 = format === "NV12";
  let o = 0;
  for (let y = 0; y < height; y++) {
    const yRow = yl.offset + y * yl.stride;
    const cRow = ul.offset + (y >> 1) * ul.stride;
    const vRow = nv12 ? cRow : vl.offset + (y >> 1) * vl.stride;
    for (let x = 0; x < width; x++) {
      const luma = (data[yRow + x] - 16) * CY;
      const u = nv12 ? data[cRow + (x & ~1)] - 128 : data[cRow + (x >> 1)] - 128;
      const v = nv12 ? data[vRow + (x & ~1) + 1] - 128 : data[vRow + (x >> 1)] - 128;
      rgb[o++] = clamp255((luma + CRV * v + HALF) >> 16);
      rgb[o++] = clamp255((luma - CGU * u - CGV * v + HALF) >> 16);
      rgb[o++] = clamp255((luma + CBU * u + HALF) >> 16);
    }
  }
  return rgb;
}

/** The frame's visible pixels: {data, channels} (3: RGB converted here, 4: the browser's RGBA). */
async function framePixels(frame) {
  const { width, height } = frame.visibleRect;
  if (["I420", "I420A", "NV12"].includes(frame.format)) {
    const buffer = new Uint8Array(frame.allocationSize());
    const layout = await frame.copyTo(buffer);
    return { data: yuvToRgb(buffer, layout, frame.format, width, height), channels: 3 };
  }
  // 10-bit, 4:2:2, 4:4:4, RGB frames...: the browser converts them for the canvas.
  const canvas = new OffscreenCanvas(width, height);
  const ctx = canvas.getContext("2d", { alpha: false, willReadFrequently: true });
  ctx.drawImage(frame, 0, 0, width, height);
  return { data: ctx.getImageData(0, 0, width, height).data, channels: 4 };
}

async function readSamples(file, samples, from) {
  // Reads samples[from...] with one slice while they follow each other in the file within
  // READ_BATCH_BYTES (audio interleaved between them is read and ignored: one read of a few MB
  // costs far less than hundreds of small ones).
  let to = from + 1;
  let end = samples[from].offset + samples[from].size;
  while (to < samples.length && samples[to].offset >= samples[to - 1].offset
    && samples[to].offset + samples[to].size - samples[from].offset <= READ_BATCH_BYTES) {
    end = Math.max(end, samples[to].offset + samples[to].size);
    to++;
  }
  const start = samples[from].offset;
  const bytes = new Uint8Array(await file.slice(start, end).arrayBuffer());
  if (bytes.length !== end - start) throw new VideoError("video_damaged", "the file is shorter than its index says");
  return { to, parts: samples.slice(from, to).map((s) => bytes.subarray(s.offset - start, s.offset - start + s.size)) };
}

/**
 * Decodes the video in `file` and feeds its frames to `builder` ({start(frameRate),
 * wants(seconds) -> bool, skip(), add(data, width, height, channels, seconds)}).
 * checkpoint() throws to cancel; progress({done, total}) after each frame. Returns
 * {codec, width, height, frameRate, frames (decoded)}. Throws VideoError.
 */
export async function decodeVideoFrames(file, builder, { checkpoint = () => {}, progress = () => {} } = {}) {
  if (typeof VideoDecoder === "undefined") {
    throw new VideoError("video_unsupported_browser", "this browser has no WebCodecs VideoDecoder");
  }
  let track;
  try {
    track = await readVideoTrack(file);
  } catch (err) {
    if (!(err instanceof Mp4Error)) throw new VideoError("video_damaged", String(err?.message ?? err));
    throw new VideoError(["not_mp4", "fragmented", "encrypted"].includes(err.code) ? "video_container_unsupported" : "video_damaged",
      err.message);
  }
  const { codec, description, samples } = track;
  const config = { codec, codedWidth: track.width, codedHeight: track.height, optimizeForLatency: false };
  if (description) config.description = description;
  const support = await VideoDecoder.isConfigSupported(config).catch(() => ({ supported: false }));
  if (!support.supported) throw new VideoError("video_codec_unsupported", codec);
  if (track.width < MIN_FRAME_SIDE || track.height < MIN_FRAME_SIDE) {
    throw new VideoError("video_damaged", `the video is ${track.width}x${track.height} pixels`);
  }

  const discarded = new Set(samples.filter((s) => s.discard).map((s) => Math.round((s.cts * 1e6) / track.timescale)));
  const total = samples.length - discarded.size;
  const open = []; // decoded frames in output order, waiting for the sampler
  let failure = null;
  let wake = null; // resolves when a frame arrives or the decoder fails
  const poke = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  const decoder = new VideoDecoder({
    output: (frame) => {
      if (discarded.has(frame.timestamp)) frame.close(); // cut by the edit list, as FFmpeg does
      else open.push(frame);
      poke();
    },
    error: (err) => {
      failure = new VideoError("video_damaged", String(err?.message ?? err));
      poke();
    },
  });
  const waitForChange = () => new Promise((resolve) => {
    wake = resolve;
    decoder.addEventListener("dequeue", poke, { once: true });
  });

  let frames = 0;
  const spent = { convertMs: 0, hashMs: 0, readMs: 0 }; // where the time goes (bench/web_bench.py)
  let width = 0;
  let height = 0;
  let started = false;
  const drain = async () => {
    // Offer every decoded frame, in order, to the builder; convert only the ones it wants.
    while (open.length) {
      const frame = open.shift();
      try {
        checkpoint();
        const rect = frame.visibleRect;
        if (!started) {
          ({ width, height } = rect);
          builder.start(track.frameRate);
          started = true;
        }
        const seconds = frame.timestamp / 1e6;
        if (builder.wants(seconds)) {
          const t0 = performance.now();
          const { data, channels } = await framePixels(frame);
          frame.close();
          if (rect.width !== width || rect.height !== height) {
            throw new VideoError("video_damaged", `frame size changes from ${width}x${height} to ${rect.width}x${rect.height}`);
          }
          const t1 = performance.now();
          builder.add(data, width, height, channels, seconds);
          spent.convertMs += t1 - t0;
          spent.hashMs += performance.now() - t1;
        } else {
          builder.skip();
        }
        frames += 1;
        progress({ done: frames, total });
      } finally {
        frame.close();
      }
    }
  };

  try {
    decoder.configure(config);
    let next = 0;
    while (next < samples.length) {
      checkpoint();
      if (failure) throw failure;
      const t0 = performance.now();
      const { to, parts } = await readSamples(file, samples, next);
      spent.readMs += performance.now() - t0;
      for (let i = next; i < to; i++) {
        const s = samples[i];
        decoder.decode(new EncodedVideoChunk({
          type: s.key ? "key" : "delta",
          timestamp: Math.round((s.cts * 1e6) / track.timescale),
          duration: Math.round((s.duration * 1e6) / track.timescale),
          data: parts[i - next],
        }));
        await drain();
        while (!failure && (decoder.decodeQueueSize > MAX_DECODE_QUEUE || open.length >= MAX_OPEN_FRAMES)) {
          await waitForChange();
          await drain();
        }
        if (failure) throw failure;
      }
      next = to;
    }
    await decoder.flush().catch((err) => {
      throw failure ?? new VideoError("video_damaged", String(err?.message ?? err));
    });
    await drain();
    if (failure) throw failure;
  } finally {
    for (const frame of open.splice(0)) frame.close();
    if (decoder.state !== "closed") decoder.close();
  }
  if (frames === 0) throw new VideoError("video_damaged", "no frame could be decoded");
  for (const key of Object.keys(spent)) spent[key] = Math.round(spent[key]);
  return { codec, width, height, frameRate: track.frameRate, decodedFrames: frames, spent };
}
