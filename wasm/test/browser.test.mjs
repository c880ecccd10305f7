// A real browser: headless Chromium loads examples/browser/ from a localhost server, the page
// runs a scripted agent through the web build and writes the event tree into the DOM; we read
// the dumped DOM and check the tree. Needs /usr/bin/chromium (scripts/setup.d/wasm.sh).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const chromium = process.env.CHROMIUM || '/usr/bin/chromium';
const TYPES = { '.html': 'text/html', '.mjs': 'text/javascript', '.js': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json' };

function serve() {
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    let file = normalize(join(root, decodeURIComponent(url.pathname)));
    if (!file.startsWith(root) || !(file.startsWith(join(root, 'examples', 'browser')) || file.startsWith(join(root, 'wasm', 'dist') + sep))) {
      res.writeHead(404).end();
      return;
    }
    if (file.endsWith(sep)) file = join(file, 'index.html');
    try {
      const body = readFileSync(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] || 'application/octet-stream' }).end(body);
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function dumpDom(url) {
  const profile = mkdtempSync(join(tmpdir(), 'baton-chromium-'));
  const args = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run', '--disable-quic', `--user-data-dir=${profile}`, '--virtual-time-budget=5000', '--dump-dom', url];
  return new Promise((resolve, reject) => {
    execFile(chromium, args, { timeout: 60000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      rmSync(profile, { recursive: true, force: true });
      if (err) reject(new Error(`chromium failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

const unescape = (s) => s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

test('headless Chromium runs a scripted agent through the module and renders its event tree', { skip: !existsSync(chromium) && `no ${chromium}` }, async () => {
  const server = await serve();
  try {
    const dom = await dumpDom(`http://127.0.0.1:${server.address().port}/examples/browser/index.html`);
    const status = dom.match(/<span id="status">([^<]*)<\/span>/);
    assert.equal(status && status[1], 'done', `page status: ${status && status[1]}`);
    const tree = JSON.parse(unescape(dom.match(/<pre id="result">([\s\S]*?)<\/pre>/)[1]));
    assert.equal(tree.length, 1);
    const run = tree[0];
    assert.deepEqual([run.name, run.category, run.status], ['research-agent', 'agent', 'OK']);
    assert.deepEqual(run.children.map((c) => c.name), ['turn-1', 'turn-2']);
    const t1 = run.children[0];
    assert.deepEqual(t1.children.map((c) => `${c.kind}:${c.name}:${c.status ?? ''}`), [
      'mark:thought:',
      'scope:no-delete:OK', 'scope:search:OK', // each call first runs the guardrail (its own scope)
      'scope:no-delete:OK', 'scope:fetch:ERROR', // the callback threw
      'scope:no-delete:OK', 'mark:delete:', // rejected: a rejection mark, no tool scope
    ]);
    assert.deepEqual(run.children[1].children.map((c) => c.name), ['thought', 'no-delete', 'search']);
    assert.match(dom, /<li class="error">fetch/);
    // The observability component's exports reached the page's export sink.
    const exportsJson = JSON.parse(unescape(dom.match(/<pre id="exports">([\s\S]*?)<\/pre>/)[1]));
    const ends = (names) => names.filter((n) => n === 'research-agent').length;
    assert.equal(ends(exportsJson.atofNames), 2, 'the run\'s start and end lines');
    assert.ok(exportsJson.atofLines >= 20, `ATOF lines: ${exportsJson.atofLines}`);
    assert.equal(exportsJson.trajectories.length, 1);
    assert.match(exportsJson.trajectories[0].fileName, /^trajectory-[0-9a-f-]{36}\.json$/);
    assert.equal(exportsJson.trajectories[0].agent, 'research-agent');
    assert.equal(exportsJson.trajectories[0].steps[0], 'user');
  } finally {
    server.close();
  }
});
