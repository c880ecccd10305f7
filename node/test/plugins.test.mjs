// Plugin documents from Node: validation diagnostics, the observability component with a real
// ATOF file, and the OpenTelemetry section (the addon installs baton-otel). Its own process.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as baton from '../index.mjs';

/** @param {Record<string, unknown>} observability */
const doc = (observability) => ({ version: 1, components: [{ kind: 'observability', enabled: true, config: { version: 1, ...observability } }] });

test('the opentelemetry section is available (http and https, both transports)', () => {
  const d = baton.plugins.validate(doc({
    opentelemetry: {
      enabled: true,
      endpoints: [
        { type: 'gen_ai', endpoint: 'https://collector.example:4318/v1/traces', transport: 'http_binary', service_name: 'svc' },
        { type: 'openinference', endpoint: 'http://127.0.0.1:4317', transport: 'grpc' },
      ],
    },
  }));
  assert.deepEqual(d.filter((x) => x.level === 'error'), []);
});

test('bad documents get diagnostics naming the field', () => {
  const d = baton.plugins.validate(doc({
    atif: { enabled: true, output_directory: '/tmp', filename_template: 'no-session.json' },
    opentelemetry: { enabled: true, endpoints: [{ type: 'gen_ai', endpoint: 'ftp://x', transport: 'pigeon' }] },
  }));
  const fields = d.filter((x) => x.level === 'error').map((x) => x.field ?? '');
  assert.ok(fields.some((f) => f.includes('filename_template')), JSON.stringify(d));
  assert.ok(fields.some((f) => f.includes('endpoint')), JSON.stringify(d));
  assert.ok(fields.some((f) => f.includes('transport')), JSON.stringify(d));
  assert.throws(() => baton.plugins.initialize({ version: 99 }), { code: 'invalid_argument' });
});

test('initialize writes ATOF events to a real file; clear removes the exporter', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'baton-node-plugins-'));
  baton.plugins.initialize(doc({
    atof: { enabled: true, sinks: [{ type: 'file', output_directory: dir, filename: 'events.jsonl', mode: 'overwrite' }] },
    opentelemetry: { enabled: true, endpoints: [{ type: 'gen_ai', endpoint: 'http://127.0.0.1:9/v1/traces', transport: 'http_binary' }] },
  }));
  await baton.tool('search', { q: 'x' }, async () => ({ hits: 1 }));
  assert.ok(await baton.flush());
  baton.plugins.clear();
  const lines = fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.map((e) => `${e.scope_category}:${e.name}`), ['start:search', 'end:search']);
  assert.deepEqual(lines[1].data, { hits: 1 });
  await baton.tool('search', { q: 'y' }, async () => 1);
  assert.ok(await baton.flush());
  assert.equal(fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').trim().split('\n').length, 2, 'nothing written after clear');
  fs.rmSync(dir, { recursive: true, force: true });
});
