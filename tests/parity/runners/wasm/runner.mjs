// Parity runner for the wasm binding. The wasm package offers the same API as node/, so this
// runs the Node runner's own code with its `import * as baton from '../../../../node/index.mjs'`
// pointed at the wasm package (through baton_fs.mjs, which gives the observability component's
// file sinks to node:fs: wasm32 has no file system). That also checks, on every scenario, the
// "same TypeScript surface" claim.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const nodeRunner = path.join(here, '..', 'node', 'runner.mjs');
const wasmPkg = pathToFileURL(path.join(here, 'baton_fs.mjs')).href;
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
