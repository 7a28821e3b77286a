// Compiles the Python archive the hashing worker mounts (trimmed stdlib + pyhash +
// kalkan_worker, as .py) into bytecode, with Pyodide's own CPython so the magic number and
// bytecode are exactly what the browser runs.
//
// Why: zipimport compiles every .py it imports, and in WebAssembly that is most of Pyodide's
// boot (about 5 s of 6.5 s here for the ~140 modules boot and pyhash import). With .pyc files
// it only unmarshals them. Docstrings are stripped (they are a third of the bytes, and nothing
// the worker runs reads them); asserts and line numbers are kept, so behaviour and tracebacks'
// line numbers are those of the source. Each .pyc is hash-based and unchecked (PEP 552): there is
// no source beside it to check, and no timestamp makes the archive differ between builds.
//
// usage: node web/tools/compile_python.mjs PYODIDE_DIR IN_ZIP OUT_ZIP
import fs from "node:fs";
import path from "node:path";

const [pyodideDir, inZip, outZip] = process.argv.slice(2);
const { loadPyodide } = await import(path.resolve(pyodideDir, "pyodide.mjs"));
globalThis.fetch = async (url) => {
  throw new Error(`no network in compile_python.mjs (tried ${url})`);
};
const pyodide = await loadPyodide({ indexURL: path.resolve(pyodideDir) + path.sep, stdout: () => {}, stderr: (line) => process.stderr.write(line + "\n") });
pyodide.FS.writeFile("/tmp/in.zip", fs.readFileSync(inZip));
const summary = pyodide.runPython(`
import ast, importlib.util, json, marshal, zipfile

DATE = (1980, 1, 1, 0, 0, 0)
HASH_BASED_UNCHECKED = (1).to_bytes(4, "little")  # PEP 552 flags: hash-based, do not check source


class StripDocstrings(ast.NodeTransformer):
    def _strip(self, node):
        self.generic_visit(node)
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \\
                and isinstance(body[0].value.value, str):
            # Dropped (a module's __future__ imports must stay first); a body left empty gets a
            # pass. Every other node keeps its line number.
            if len(body) > 1:
                del body[0]
            else:
                body[0] = ast.copy_location(ast.Pass(), body[0])
        return node

    visit_Module = visit_ClassDef = visit_FunctionDef = visit_AsyncFunctionDef = _strip


source_bytes = compiled_bytes = 0
with zipfile.ZipFile("/tmp/in.zip") as source, zipfile.ZipFile("/tmp/out.zip", "w", zipfile.ZIP_STORED) as out:
    for info in sorted(source.infolist(), key=lambda i: i.filename):
        data = source.read(info.filename)
        name = info.filename
        if name.endswith(".py"):
            tree = StripDocstrings().visit(ast.parse(data, filename=name))
            code = compile(tree, name, "exec", dont_inherit=True, optimize=0)
            data = importlib.util.MAGIC_NUMBER + HASH_BASED_UNCHECKED + importlib.util.source_hash(data) \\
                + marshal.dumps(code)
            source_bytes += info.file_size
            compiled_bytes += len(data)
            name = name[:-3] + ".pyc"
        member = zipfile.ZipInfo(name, date_time=DATE)
        member.external_attr = 0o644 << 16
        out.writestr(member, data)
json.dumps({"source_bytes": source_bytes, "compiled_bytes": compiled_bytes})
`);
fs.writeFileSync(outZip, pyodide.FS.readFile("/tmp/out.zip"));
process.stdout.write(summary + "\n");
