// Export sinks: the observability component's ATOF lines and ATIF trajectories delivered to JS
// functions (there is no file system on wasm32; this is how a browser gets them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../dist/index.mjs';

test('ATOF lines and ATIF documents go to a registered sink', async () => {
  const lines = [];
  const docs = [];
  baton.plugins.registerSink('ui', { atof: (line) => lines.push(line), atif: (doc, info) => docs.push({ doc, info }) });
  const report = baton.plugins.initialize({
    version: 1,
    components: [{ kind: 'observability', config: {
      atof: { enabled: true, sinks: [{ type: 'callback', sink: 'ui' }] },
      atif: { enabled: true, sink: 'ui', agent_name: 'helper', filename_template: 'run-{session_id}.json' },
    } }],
  });
  assert.deepEqual(report.components[0].registrations.map((r) => r.name), ['observability.atof.0', 'observability.atif']);
  try {
    const agent = baton.push('assistant', { category: 'agent', input: 'What is 2+2?' });
    baton.llmSync('think', { headers: {}, content: { model: 'm', messages: [{ role: 'user', content: 'What is 2+2?' }] } }, () => ({
      id: 'c1', model: 'm', choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: '4' } }],
      usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 },
    }));
    baton.pop(agent, { output: '4' });
    await baton.flush();
    const events = lines.map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => `${e.name}:${e.scope_category}`), ['assistant:start', 'think:start', 'think:end', 'assistant:end']);
    assert.ok(lines.every((l) => !l.includes('\n')), 'one event per line');
    assert.equal(docs.length, 1);
    const { doc, info } = docs[0];
    assert.equal(info.sessionId, agent.uuid);
    assert.equal(info.fileName, `run-${agent.uuid}.json`);
    assert.equal(doc.schema_version, 'ATIF-v1.7');
    assert.equal(doc.agent.name, 'helper');
    // The input becomes a user step, the LLM end an agent step (the scope's output closes the run).
    assert.deepEqual(doc.steps.slice(0, 2).map((s) => [s.source, s.message]), [['user', 'What is 2+2?'], ['agent', '4']]);
    assert.equal(doc.steps[1].metrics.prompt_tokens, 5);
    assert.equal(doc.final_metrics.total_prompt_tokens, 5);
  } finally {
    baton.plugins.clear();
    assert.equal(baton.plugins.deregisterSink('ui'), true);
  }
});

test('documents naming a missing or unfit sink get diagnostics naming the field', () => {
  baton.plugins.registerSink('lines-only', { atof: () => {} });
  try {
    const diag = baton.plugins.validate({ version: 1, components: [{ kind: 'observability', config: {
      atof: { enabled: true, sinks: [{ type: 'callback', sink: 'nope' }] },
      atif: { enabled: true, sink: 'lines-only' },
    } }] });
    assert.deepEqual(diag.filter((d) => d.level === 'error').map((d) => d.field), [
      'components[0].config.atof.sinks[0].sink', 'components[0].config.atif.sink',
    ]);
    assert.throws(() => baton.plugins.initialize({ version: 1, components: [{ kind: 'observability', config: {
      atof: { enabled: true, sinks: [{ type: 'callback', sink: 'nope' }] } } }] }), (e) => e.code === 'invalid_argument' && /sinks\[0\]\.sink/.test(e.message));
    assert.throws(() => baton.plugins.registerSink('lines-only', { atof: () => {} }), (e) => e.code === 'already_exists');
    assert.throws(() => baton.plugins.registerSink('empty', {}), (e) => e.code === 'invalid_argument');
    assert.throws(() => baton.plugins.registerSink('bad', { atof: 'x' }), (e) => e.code === 'invalid_argument' && /sink\.atof/.test(e.message));
  } finally {
    baton.plugins.deregisterSink('lines-only');
  }
});

test('a throwing sink is isolated and counted; file sinks still need a file system', async () => {
  baton.plugins.registerSink('flaky', { atof: () => { throw new Error('disk full'); } });
  try {
    baton.plugins.initialize({ version: 1, components: [{ kind: 'observability', config: {
      atof: { enabled: true, sinks: [{ type: 'callback', sink: 'flaky' }] } } }] });
    const before = baton.diagnostics().subscriberFailures;
    baton.mark('m');
    await baton.flush();
    assert.equal(baton.diagnostics().subscriberFailures, before + 1);
  } finally {
    baton.plugins.clear();
    baton.plugins.deregisterSink('flaky');
  }
  assert.throws(() => baton.plugins.initialize({ version: 1, components: [{ kind: 'observability', config: {
    atof: { enabled: true, sinks: [{ type: 'file', output_directory: '/tmp/x', filename: 'e.jsonl' }] } } }] }),
  (e) => e.code === 'invalid_argument' && /not supported on this platform/.test(e.message));
});
