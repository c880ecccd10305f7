// Delivery to JS subscribers (text form, back-pressure) and the nothing-registered shortcut.
// Its own process: the first test needs a runtime with nothing registered.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as baton from '../index.mjs';
import { deliveryCases } from './cases/delivery.mjs';

deliveryCases(baton);

test('a JS thread that never yields drains inline past the high-water mark (bounded memory)', async () => {
  let delivered = 0;
  let last = -1;
  let ordered = true;
  baton.subscribe('count', (t) => {
    const e = JSON.parse(t);
    if (e.kind === 'mark') {
      if (e.data.i !== last + 1) ordered = false;
      last = e.data.i;
    }
    delivered++;
  }, { format: 'json' });
  const n = 60_000;
  let deliveredDuringLoop = 0;
  for (let i = 0; i < n; i++) {
    baton.mark('m', { data: { i } });
    if (i === n - 1) deliveredDuringLoop = delivered;
  }
  // Without back-pressure nothing could be delivered before the loop yields.
  assert.ok(deliveredDuringLoop > n / 2, `only ${deliveredDuringLoop} of ${n} delivered while the loop ran`);
  assert.ok(await baton.flush());
  assert.equal(delivered, n);
  assert.ok(ordered, 'emission order kept across inline and scheduled drains');
  assert.equal(baton.diagnostics().droppedEvents, 0);
  baton.deregister('subscriber', 'count');
});

test('a batch of many segments: each subscriber gets each event once, in order, objects shared', async () => {
  /** @type {string[]} */
  const texts = [];
  /** @type {baton.AtofEvent[]} */
  const a = [];
  /** @type {baton.AtofEvent[]} */
  const b = [];
  baton.subscribe('text', (t) => { texts.push(t); }, { format: 'json' });
  baton.subscribe('a', (e) => { a.push(e); });
  baton.subscribe('b', (e) => { b.push(e); });
  // ~0.6 MB of events before anything is drained: the addon cuts the batch into segments
  // (64 KB of text each), some with non-ASCII text, and one carries b's close marker.
  const pad = 'x'.repeat(250);
  const n = 2_000;
  for (let i = 0; i < n; i++) {
    baton.mark('m', { data: { i, pad: i % 97 === 0 ? `ü→${pad}` : pad } });
    if (i === n / 2 - 1) baton.deregister('subscriber', 'b');
  }
  assert.ok(await baton.flush());
  assert.equal(texts.length, n);
  assert.equal(a.length, n);
  assert.equal(b.length, n / 2, 'b got what was emitted before it was deregistered');
  a.forEach((e, i) => {
    assert.equal(/** @type {any} */ (e.data).i, i);
    assert.equal(JSON.stringify(e), texts[i]);
    if (i < n / 2) assert.equal(e, b[i], 'one object per event, shared');
  });
  baton.deregister('subscriber', 'text');
  baton.deregister('subscriber', 'a');
});

test('segments with more deliveries than the shared numbers buffer holds arrive whole and in order', async () => {
  // 150 subscribers: a 64 KB segment of marks then carries more (subscriber, event) pairs than
  // the addon's shared numbers buffer (64 Ki words), so it comes with typed arrays of its own;
  // smaller segments use the shared buffer. Both forms must deliver the same events.
  const subs = 150;
  const n = 1_500;
  /** @type {any[][]} */
  const got = Array.from({ length: subs }, () => []);
  for (let s = 0; s < subs; s++) baton.subscribe(`many-${s}`, (e) => { got[s].push(e); });
  for (let i = 0; i < n; i++) baton.mark('m', { data: { i, note: i % 7 === 0 ? 'ü' : 'x' } });
  assert.ok(await baton.flush());
  for (let s = 0; s < subs; s++) {
    assert.equal(got[s].length, n, `subscriber ${s}`);
    got[s].forEach((e, i) => {
      assert.equal(e.data.i, i);
      assert.equal(e.data.note, i % 7 === 0 ? 'ü' : 'x');
      assert.equal(e, got[0][i], 'one object per event, shared');
    });
  }
  for (let s = 0; s < subs; s++) baton.deregister('subscriber', `many-${s}`);
  // A single subscriber afterwards: the shared buffer again.
  /** @type {any[]} */
  const one = [];
  baton.subscribe('one', (e) => { one.push(e); });
  for (let i = 0; i < 10; i++) baton.mark('m', { data: { i } });
  assert.ok(await baton.flush());
  assert.deepEqual(one.map((e) => e.data.i), [...Array(10).keys()]);
  baton.deregister('subscriber', 'one');
});
