// An instrumented fake agent in the browser: scopes, tool calls (one failing, one blocked by a
// guardrail), marks; a subscriber renders the scope tree live and, at the end, writes the event
// tree as JSON into <pre id="result"> (the browser test reads it).
import * as baton from '../../wasm/dist/web.mjs';

const statusEl = document.getElementById('status');
const treeEl = document.getElementById('tree');
const nodes = new Map(); // uuid -> {event, children, end, el}
const roots = [];

function render() {
  const li = (n) => {
    const cls = n.end ? (n.end.metadata['otel.status_code'] === 'ERROR' ? 'error' : '') : 'open';
    const label = `${n.event.kind === 'mark' ? '• ' : ''}${n.event.name} <span class="cat">${n.event.category ?? ''}</span>`;
    return `<li class="${cls}">${label}${n.children.length ? `<ul>${n.children.map(li).join('')}</ul>` : ''}</li>`;
  };
  treeEl.innerHTML = `<ul>${roots.map(li).join('')}</ul>`;
}

function onEvent(e) {
  if (e.kind === 'scope' && e.scope_category === 'end') {
    const n = nodes.get(e.uuid);
    if (n) n.end = e;
  } else {
    const n = { event: e, children: [], end: null };
    nodes.set(e.uuid, n);
    const parent = e.parent_uuid && nodes.get(e.parent_uuid);
    (parent ? parent.children : roots).push(n);
  }
  render();
}

function toJson(n) {
  const out = { kind: n.event.kind, name: n.event.name, category: n.event.category ?? null };
  if (n.event.kind === 'scope') out.status = n.end ? n.end.metadata['otel.status_code'] : 'open';
  if (n.children.length) out.children = n.children.map(toJson);
  return out;
}

const tick = () => new Promise((r) => setTimeout(r, 30));

async function main() {
  await baton.init();
  baton.subscribe('render', onEvent);
  // The observability component's ATOF and ATIF exports, delivered to callbacks.
  const atofLines = [];
  const trajectories = [];
  baton.plugins.registerSink('page', {
    atof: (line) => atofLines.push(line),
    atif: (doc, info) => trajectories.push({ fileName: info.fileName, doc }),
  });
  baton.plugins.initialize({
    version: 1,
    components: [{ kind: 'observability', config: {
      atof: { enabled: true, sinks: [{ type: 'callback', sink: 'page' }] },
      atif: { enabled: true, sink: 'page', agent_name: 'research-agent' },
    } }],
  });
  baton.register('tool_conditional_execution', 'no-delete', (args) =>
    args.path === '/' ? { allow: false, reason: 'refusing to delete /' } : true);

  const run = baton.push('research-agent', { category: 'agent', input: { task: 'weather in Paris' } });
  for (let turn = 1; turn <= 2; turn++) {
    const t = baton.push(`turn-${turn}`, { category: 'function' });
    baton.mark('thought', { data: { text: turn === 1 ? 'look it up' : 'summarize' } });
    baton.toolSync('search', { q: 'paris weather' }, (a) => ({ hits: 3, q: a.q }), { toolCallId: `call-${turn}` });
    await tick();
    if (turn === 1) {
      try {
        baton.toolSync('fetch', { url: 'https://example.invalid' }, () => { throw new Error('network down'); });
      } catch { /* the agent recovers */ }
      try {
        baton.toolSync('delete', { path: '/' }, () => 'never');
      } catch { /* guardrail_rejected */ }
    }
    baton.pop(t, { output: { turn } });
    await tick();
  }
  baton.pop(run, { output: { answer: 'sunny, 21 °C' } });
  await baton.flush();
  document.getElementById('result').textContent = JSON.stringify(roots.map(toJson), null, 2);
  document.getElementById('exports').textContent = JSON.stringify({
    atofLines: atofLines.length,
    atofNames: atofLines.map((l) => JSON.parse(l).name),
    trajectories: trajectories.map((t) => ({ fileName: t.fileName, agent: t.doc.agent.name, steps: t.doc.steps.map((s) => s.source) })),
  }, null, 2);
  statusEl.textContent = 'done';
}

main().catch((e) => {
  statusEl.textContent = `error: ${e && e.code ? e.code + ': ' : ''}${e && e.message}`;
});
