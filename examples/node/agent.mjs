// A small agent loop instrumented with Baton: a scripted "LLM" decides to call a tool, a
// guardrail blocks a dangerous tool, a sanitizer redacts secrets from events, the final
// answer is streamed, and a subscriber prints the scope tree.
//
//   just build-node && node examples/node/agent.mjs
// @ts-check
import * as baton from '../../node/index.mjs';

/** @type {baton.AtofEvent[]} */
const events = [];
baton.subscribe('collector', (e) => { events.push(e); });

// Policy: never delete files. Guardrails may be sync or async.
baton.register('tool_conditional_execution', 'no-deletes', async (_args, info) =>
  info.name === 'delete_file' ? { allow: false, reason: 'deleting files is not allowed' } : true);

// Events never carry the API key the tool receives.
baton.register('tool_sanitize_request', 'redact', (args) => ({ .../** @type {object} */ (args), api_key: '[redacted]' }));

// Retry a flaky tool once (execution intercepts may call next several times).
baton.register('tool_execution_intercept', 'retry-once', async (args, next) => {
  try {
    return await next(args);
  } catch {
    return next(args);
  }
});

/** A scripted provider: first asks for the weather tool, then answers. */
function provider(/** @type {baton.Json} */ request) {
  const content = /** @type {{messages: {role: string}[]}} */ (/** @type {any} */ (request).content);
  const last = content.messages[content.messages.length - 1];
  return last.role === 'user'
    ? { tool_call: { name: 'weather', arguments: { city: 'Paris' } } }
    : { text: 'It is sunny in Paris.' };
}

let failures = 0;
async function weather(/** @type {baton.Json} */ args) {
  await new Promise((r) => setTimeout(r, 5));
  if (failures++ === 0) throw new Error('transient network error');
  return { city: /** @type {any} */ (args).city, forecast: 'sunny' };
}

const answer = await baton.withScope('research-agent', async () => {
  const messages = [{ role: 'user', content: 'Weather in Paris?' }];
  const first = await baton.llm('chat', { headers: { authorization: 'Bearer sk-demo' }, content: { messages } }, provider, { modelName: 'scripted-1' });
  const call = /** @type {any} */ (first).tool_call;
  const result = await baton.tool(call.name, { ...call.arguments, api_key: 'sk-tool' }, weather, { toolCallId: 'call-1' });
  messages.push({ role: 'tool', content: JSON.stringify(result) });
  try {
    await baton.tool('delete_file', { path: '/tmp/x' }, () => 'deleted');
  } catch (e) {
    baton.mark('blocked', { data: { code: /** @type {baton.BatonError} */ (e).code } });
  }
  const stream = await baton.llmStream('chat', { content: { messages } }, async function* () {
    for (const word of String(/** @type {any} */ (provider({ content: { messages } })).text).split(' ')) yield { delta: word };
  }, { modelName: 'scripted-1' });
  const words = [];
  for await (const chunk of stream) words.push(/** @type {any} */ (chunk).delta);
  return words.join(' ');
}, { category: 'agent' });

await baton.shutdown();

console.log(`answer: ${answer}\n`);
/** @type {Map<string, number>} */
const depth = new Map();
for (const e of events) {
  if (e.scope_category === 'end') continue;
  const d = e.parent_uuid ? (depth.get(e.parent_uuid) ?? 0) + 1 : 0;
  if (e.kind === 'scope') depth.set(e.uuid, d);
  const status = events.find((x) => x.uuid === e.uuid && x.scope_category === 'end')?.metadata['otel.status_code'] ?? '';
  console.log(`${'  '.repeat(d)}${e.kind === 'mark' ? '·' : '▸'} ${e.name} ${e.category ?? ''} ${status} ${e.name === 'weather' ? JSON.stringify(e.data) : ''}`);
}
