// Which files of Pyodide's standard library archive the hashing worker needs.
//
// Boots Pyodide (from node_modules, full archive) the way web/src/hash-worker.js does, makes the
// same calls into web/src/py/kalkan_worker.py (success and error paths), and prints as JSON the
// archive members of every module then loaded from the archive, plus the pyhash modules used.
// web/build_web.py keeps only those (and a few listed extras) in the archive it ships; the
// Chromium tests prove the trimmed archive boots and hashes.
//
// usage: node web/tools/stdlib_modules.mjs PYODIDE_DIR SOURCE_DIR...   (each SOURCE_DIR is put
// on sys.path: the repo root for pyhash/, web/src/py for kalkan_worker.py)
import fs from "node:fs";
import path from "node:path";

const [pyodideDir, ...sourceDirs] = process.argv.slice(2);
const { loadPyodide } = await import(path.resolve(pyodideDir, "pyodide.mjs"));
globalThis.fetch = async (url) => {
  throw new Error(`no network in stdlib_modules.mjs (tried ${url})`);
};
const pyodide = await loadPyodide({ indexURL: path.resolve(pyodideDir) + path.sep, stdout: () => {}, stderr: () => {} });
const bootModules = pyodide.runPython("import sys; sorted(sys.modules)").toJs();

const mounts = [];
sourceDirs.forEach((dir, i) => {
  const dest = `/kalkan-src-${i}`;
  const walk = (rel) => {
    for (const entry of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.posix.join(rel, entry.name);
      if (entry.isDirectory() && entry.name !== "__pycache__" && !entry.name.startsWith(".") && rel === "" && entry.name === "pyhash") walk(r);
      else if (entry.isDirectory() && rel !== "") walk(r);
      else if (entry.isFile() && entry.name.endsWith(".py") && (rel !== "" || dir.endsWith("py"))) {
        pyodide.FS.mkdirTree(path.posix.dirname(path.posix.join(dest, r)));
        pyodide.FS.writeFile(path.posix.join(dest, r), fs.readFileSync(path.join(dir, r)));
      }
    }
  };
  walk("");
  mounts.push(dest);
});
pyodide.runPython(`import sys; sys.path[:0] = ${JSON.stringify(mounts)}`);

// The worker's calls, as hash-worker.js makes them.
const glue = pyodide.pyimport("kalkan_worker");
const w = 37, h = 23;
const rgba = new Uint8ClampedArray(w * h * 4).map((_, i) => (i * 7919) % 251);
const whole = JSON.parse(glue.pdq_rgba(rgba, w, h));
const cut = 11;
const bands = [
  glue.band_sums(rgba.subarray(0, cut * w * 4), w, h, 0, cut),
  glue.band_sums(rgba.subarray(cut * w * 4), w, h, cut, h),
];
const joined = JSON.parse(glue.finish(bands, w, h));
if (joined.hash !== whole.hash) throw new Error("band sums do not add up");
glue.md5_start(1);
glue.md5_update(1, new Uint8Array([1, 2, 3]));
if (glue.md5_finish(1) !== "5289df737df57326fcdd22597afb1fac") throw new Error("md5 mismatch");
glue.md5_start(2);
glue.md5_cancel(2);
// A video's vPDQ, frame by frame (30 fps: frames 0 and 30 are hashed), and a cancelled one.
glue.vpdq_start(3, 30.0);
for (let n = 0; n < 31; n++) {
  if (glue.vpdq_wants(3, n / 30)) glue.vpdq_add(3, rgba.subarray(0, w * h * 4), w, h, 4, n / 30);
  else glue.vpdq_skip(3);
}
const video = JSON.parse(glue.vpdq_finish(3));
if (video.frames.length !== 2 || video.frames[1].frame_number !== 30) throw new Error("vpdq sampling is off");
glue.vpdq_start(4, null);
glue.vpdq_add(4, rgba.subarray(0, w * h * 3), w, h, 3, 0.0);
glue.vpdq_cancel(4);
let failed = false;
try {
  glue.band_sums(rgba.subarray(0, 5), w, h, 0, cut);
} catch (err) {
  failed = String(err.message).includes("37x11 with 4 channels needs");
}
if (!failed) throw new Error("the error path did not raise the expected PythonError");
glue.destroy();

const info = JSON.parse(pyodide.runPython(`
import json, sys
members, pyhash_modules = set(), set()
for name, module in list(sys.modules.items()):
    spec = getattr(module, "__spec__", None)
    origin = getattr(spec, "origin", None) or ""
    if ".zip/" in origin:
        members.add(origin.split(".zip/", 1)[1])
    elif origin.startswith("/kalkan-src-"):
        pyhash_modules.add(origin.split("/", 2)[2])
json.dumps({"stdlib": sorted(members), "sources": sorted(pyhash_modules), "python": sys.version.split()[0]})
`));
info.boot_modules = bootModules.length;
process.stdout.write(JSON.stringify(info) + "\n");
