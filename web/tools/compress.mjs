// Precompresses files for the asset server: FILE.br (brotli, quality 11) and FILE.gz (gzip -9)
// beside each FILE, unless compression would not make it smaller. Compressed bytes are cached
// in CACHE_DIR by the input's SHA-256 (brotli 11 of Pyodide's 9.6 MB wasm takes about a minute),
// so rebuilding after a change to our own files costs seconds.
//
// usage: node web/tools/compress.mjs CACHE_DIR FILE...
// prints JSON: {FILE: {"br": bytes|null, "gzip": bytes|null}}
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import zlib from "node:zlib";

const brotli = promisify(zlib.brotliCompress);
const gzip = promisify(zlib.gzip);
const [cacheDir, ...files] = process.argv.slice(2);
fs.mkdirSync(cacheDir, { recursive: true });

async function cached(key, make) {
  const file = path.join(cacheDir, key);
  if (fs.existsSync(file)) return fs.readFileSync(file);
  const out = await make();
  fs.writeFileSync(file + ".tmp" + process.pid, out);
  fs.renameSync(file + ".tmp" + process.pid, file);
  return out;
}

async function compress(file) {
  const data = fs.readFileSync(file);
  const digest = crypto.createHash("sha256").update(data).digest("hex");
  const [br, gz] = await Promise.all([
    cached(`${digest}.q11.br`, () => brotli(data, {
      params: {
        [zlib.constants.BROTLI_PARAM_QUALITY]: 11,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: data.length,
      },
    })),
    cached(`${digest}.9.gz`, () => gzip(data, { level: 9 })),
  ]);
  const sizes = { br: null, gzip: null };
  for (const [suffix, name, out] of [[".br", "br", br], [".gz", "gzip", gz]]) {
    if (out.length < data.length) {
      fs.writeFileSync(file + suffix, out);
      sizes[name] = out.length;
    }
  }
  return [file, sizes];
}

// Largest first, so the long brotli runs start at once on the thread pool.
files.sort((a, b) => fs.statSync(b).size - fs.statSync(a).size);
const results = Object.fromEntries(await Promise.all(files.map(compress)));
process.stdout.write(JSON.stringify(results) + "\n");
