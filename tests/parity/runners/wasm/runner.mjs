// Parity runner for the wasm binding (work in progress; see docs/wasm.md).
// The wasm package offers the same API as node/, so for now this runs the Node runner's own
// code with its `import * as baton from '../../../../node/index.mjs'` pointed at wasm/dist.
// That both measures coverage and checks the "same TypeScript surface" claim; it will become
// a dedicated runner once the wasm binding covers the whole contract.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeRunner = path.join(here, '..', 'node', 'runner.mjs');
const wasmPkg = pathToFileURL(path.join(here, '..', '..', '..', '..', 'wasm', 'dist', 'index.mjs')).href;
const src = fs.readFileSync(nodeRunner, 'utf8');
const IMPORT = "import * as baton from '../../../../node/index.mjs';";
if (!src.includes(IMPORT)) {
  console.error(`wasm runner: ${nodeRunner} no longer imports the Node package the expected way`);
  process.exit(2);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-wasm-runner-'));
const file = path.join(tmp, 'runner.mjs');
fs.writeFileSync(file, src.replace(IMPORT, `import * as baton from ${JSON.stringify(wasmPkg)};`));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
await import(pathToFileURL(file).href);
