// The lazy-fork cases, run against both packages: node/test/forks.test.mjs passes the Node
// package, wasm/test/forks.test.mjs the wasm one (same API, same .d.ts).
//
// Lazy forks: an async call's function runs on a fork of the caller's stack that is made only
// when the function uses Baton, from a pin (a fork shared by calls made at one caller
// position). These cases check that this is indistinguishable from a fork per call: isolation
// between concurrent calls, late use, the pin cache across pushes, pops and stacks, nesting —
// and that the managed async paths (middleware registered) run on forks too, so concurrent
// calls and streams do not interleave on the caller's stack.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { recorder as recordAll } from './recorder.mjs';

/** @typedef {import('../../index.mjs').AtofEvent} AtofEvent */

v8.setFlagsFromString('--expose-gc');
const gc = /** @type {() => void} */ (vm.runInNewContext('gc'));

const sleep = (/** @type {number} */ ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Registers the lazy-fork tests for one package.
 * @param {typeof import('../../index.mjs')} baton
 */
export function lazyForkCases(baton) {
  /**
   * `baton.tool` typed loosely for these tests: functions returning nothing or plain records.
   * @type {(name: string, args: any, fn: () => Promise<any>) => Promise<any>}
   */
  const tool = /** @type {any} */ (baton.tool);

  /** Records every event of a run (./recorder.mjs). */
  const recorder = () => recordAll(baton);

  /** @param {AtofEvent[]} events @param {string} name */
  function started(events, name) {
    const e = events.find((x) => x.name === name && x.scope_category !== 'end');
    assert.ok(e, `no event named ${name}`);
    return e;
  }

  /** The parent of a scope the function of a bare tool call pushes (nothing registered). */
  async function parentSeenByTool() {
    return tool('probe', {}, async () => {
      await null;
      const s = baton.push('probe-inside');
      const parent = s.parentUuid;
      baton.pop(s);
      return parent;
    });
  }

  test('lazy forks: concurrent bare async tools each see only their own scopes (nothing registered)', async () => {
    const outer = baton.push('outer');
    const n = 50;
    const seen = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        tool(`t-${i}`, { i }, async () => {
          assert.equal(baton.currentScope(), null, 'a fresh fork has no scope of its own');
          await sleep(i % 5);
          const s = baton.push(`p-${i}`);
          await sleep((i * 3) % 7);
          const cur = baton.currentScope();
          const inner = baton.push(`q-${i}`);
          await sleep(i % 3);
          const deeper = baton.currentScope();
          baton.pop(inner);
          const back = baton.currentScope();
          baton.pop(s);
          return {
            cur: cur && cur.uuid, deeper: deeper && deeper.uuid, back: back && back.uuid,
            s: s.uuid, inner: inner.uuid, parent: s.parentUuid, innerParent: inner.parentUuid,
            depth: baton.currentStack().depth,
          };
        }),
      ),
    );
    for (const r of seen) {
      assert.equal(r.cur, r.s);
      assert.equal(r.deeper, r.inner);
      assert.equal(r.back, r.s);
      assert.equal(r.parent, outer.uuid);
      assert.equal(r.innerParent, r.s);
      assert.equal(r.depth, 0);
    }
    // Nothing the functions pushed leaked onto the caller's stack.
    assert.equal(baton.currentScope()?.uuid, outer.uuid);
    assert.equal(baton.currentStack().depth, 1);
    baton.pop(outer);
  });

  test('lazy forks: functions that start using Baton after a subscriber registered build separate trees', async () => {
    const outer = baton.push('outer-late-reg');
    /** @type {() => void} */
    let release = () => {};
    const gate = new Promise((/** @type {(v?: unknown) => void} */ r) => { release = r; });
    const n = 30;
    // Called with nothing registered: bare calls whose functions have not touched Baton yet.
    const calls = Array.from({ length: n }, (_, i) =>
      tool(`lr-${i}`, { i }, async () => {
        await gate;
        const s = baton.push(`lr-scope-${i}`);
        await sleep(i % 4);
        baton.mark(`lr-mark-${i}`);
        await baton.withScope(`lr-with-${i}`, async () => { await sleep(i % 3); baton.mark(`lr-inner-${i}`); });
        baton.pop(s);
        return i;
      }),
    );
    const rec = recorder();
    release();
    assert.deepEqual(await Promise.all(calls), Array.from({ length: n }, (_, i) => i));
    baton.pop(outer);
    const ev = await rec.done();
    for (let i = 0; i < n; i++) {
      const s = started(ev, `lr-scope-${i}`);
      assert.equal(s.parent_uuid, outer.uuid);
      assert.equal(started(ev, `lr-mark-${i}`).parent_uuid, s.uuid);
      const w = started(ev, `lr-with-${i}`);
      assert.equal(w.parent_uuid, s.uuid);
      assert.equal(started(ev, `lr-inner-${i}`).parent_uuid, w.uuid);
    }
    assert.ok(ev.filter((e) => e.scope_category === 'end').every((e) => e.metadata['otel.status_code'] === 'OK'));
  });

  test('lazy forks: with a subscriber registered, concurrent async tools stay isolated', async () => {
    const rec = recorder();
    const outer = baton.push('outer-sub');
    const n = 30;
    await Promise.all(
      Array.from({ length: n }, (_, i) =>
        tool(`st-${i}`, { i }, async () => {
          await sleep(i % 5);
          const s = baton.push(`st-scope-${i}`);
          await sleep((i * 7) % 4);
          baton.mark(`st-mark-${i}`);
          // A bare-shaped nested call (no options) is entered too while a subscriber listens.
          await tool(`st-nested-${i}`, {}, async () => { await sleep(i % 2); baton.mark(`st-deep-${i}`); });
          baton.pop(s);
        }),
      ),
    );
    baton.pop(outer);
    const ev = await rec.done();
    for (let i = 0; i < n; i++) {
      const t = started(ev, `st-${i}`);
      assert.equal(t.parent_uuid, outer.uuid);
      const s = started(ev, `st-scope-${i}`);
      assert.equal(s.parent_uuid, t.uuid);
      assert.equal(started(ev, `st-mark-${i}`).parent_uuid, s.uuid);
      const nested = started(ev, `st-nested-${i}`);
      assert.equal(nested.parent_uuid, s.uuid);
      assert.equal(started(ev, `st-deep-${i}`).parent_uuid, nested.uuid);
    }
  });

  test('managed async calls (middleware registered) run on forks: concurrent calls stay isolated', async () => {
    const rec = recorder();
    baton.register('tool_conditional_execution', 'allow-all', () => true);
    baton.register('llm_stream_execution_intercept', 'pass', (/** @type {any} */ chunks) => chunks);
    const outer = baton.push('outer-managed');
    try {
      const n = 20;
      await Promise.all(
        Array.from({ length: n }, (_, i) =>
          tool(`mt-${i}`, { i }, async () => {
            await sleep(i % 4);
            const s = baton.push(`mt-scope-${i}`);
            await sleep((i * 5) % 3);
            baton.mark(`mt-mark-${i}`);
            baton.pop(s);
            return i;
          }),
        ),
      );
      // Managed streams consumed concurrently: each source's steps run on its own stream's fork,
      // with the stream's scope current while the core pulls.
      await Promise.all(
        Array.from({ length: 6 }, async (_, i) => {
          const s = await baton.llmStream(`ms-${i}`, { content: i }, async function* () {
            for (let k = 0; k < 3; k++) {
              baton.mark(`ms-mark-${i}-${k}`);
              await sleep((i + k) % 3);
              yield k;
            }
          });
          /** @type {unknown[]} */
          const got = [];
          for await (const c of s) got.push(c);
          assert.deepEqual(got, [0, 1, 2]);
        }),
      );
      assert.equal(baton.currentScope()?.uuid, outer.uuid, 'nothing was left on the caller stack');
      baton.pop(outer);
      const ev = await rec.done();
      for (let i = 0; i < n; i++) {
        const t = started(ev, `mt-${i}`);
        assert.equal(t.parent_uuid, outer.uuid);
        const s = started(ev, `mt-scope-${i}`);
        assert.equal(s.parent_uuid, t.uuid);
        assert.equal(started(ev, `mt-mark-${i}`).parent_uuid, s.uuid);
      }
      for (let i = 0; i < 6; i++) {
        const st = started(ev, `ms-${i}`);
        assert.equal(st.parent_uuid, outer.uuid);
        for (let k = 0; k < 3; k++) assert.equal(started(ev, `ms-mark-${i}-${k}`).parent_uuid, st.uuid);
      }
      assert.ok(ev.filter((e) => e.scope_category === 'end').every((e) => e.metadata['otel.status_code'] === 'OK'));
    } finally {
      if (!outer.ended) baton.pop(outer);
      baton.deregister('tool_conditional_execution', 'allow-all');
      baton.deregister('llm_stream_execution_intercept', 'pass');
    }
  });

  test('lazy forks: late use after the call resolved parents under the caller scope at call time', async () => {
    const caller = baton.push('caller');
    /** @type {() => void} */
    let fired = () => {};
    const done = new Promise((/** @type {(v?: unknown) => void} */ r) => { fired = r; });
    /** @type {{late?: string | null, stackParent?: string | null}} */
    const seen = {};
    const v = await tool('schedules', {}, async () => {
      setTimeout(() => {
        baton.mark('late-mark');
        const s = baton.push('late-scope');
        seen.late = s.parentUuid;
        baton.pop(s);
        baton.withScope('late-with', () => {});
        seen.stackParent = baton.propagationContext().parent_uuid;
        fired();
      }, 30);
      return 'ok';
    });
    assert.equal(v, 'ok');
    // The caller moves on: another scope, and another call from the new position.
    const meanwhile = baton.push('meanwhile');
    assert.equal(await parentSeenByTool(), meanwhile.uuid);
    const rec = recorder();
    await done;
    baton.pop(meanwhile);
    baton.pop(caller);
    const ev = await rec.done();
    assert.equal(started(ev, 'late-mark').parent_uuid, caller.uuid);
    assert.equal(started(ev, 'late-scope').parent_uuid, caller.uuid);
    assert.equal(started(ev, 'late-with').parent_uuid, caller.uuid);
    assert.equal(seen.late, caller.uuid);
    assert.equal(seen.stackParent, caller.uuid);
  });

  test('lazy forks: late use after the caller popped its scope still parents there', async () => {
    const caller = baton.push('caller-gone');
    /** @type {(v: string | null) => void} */
    let got = () => {};
    const parent = new Promise((/** @type {(v: string | null) => void} */ r) => { got = r; });
    await tool('t', {}, async () => {
      setTimeout(() => {
        const s = baton.push('after-pop');
        got(s.parentUuid);
        baton.pop(s);
      }, 10);
    });
    baton.pop(caller);
    // Calls made from the caller's new position parent there (no scope: the root).
    assert.equal(await parentSeenByTool(), null);
    assert.equal(await parent, caller.uuid);
  });

  test('lazy forks: calls before and after pushes and pops get the right parent (pin cache)', async () => {
    assert.equal(await parentSeenByTool(), null);
    const a = baton.push('a');
    assert.equal(await parentSeenByTool(), a.uuid);
    assert.equal(await parentSeenByTool(), a.uuid);
    const b = baton.push('b');
    assert.equal(await parentSeenByTool(), b.uuid);
    baton.pop(b);
    assert.equal(await parentSeenByTool(), a.uuid);
    const c = baton.push('c');
    assert.equal(await parentSeenByTool(), c.uuid);
    baton.pop(c);
    baton.pop(a);
    assert.equal(await parentSeenByTool(), null);
    // Many positions, with scopes freed (and their memory reused) between calls.
    for (let i = 0; i < 300; i++) {
      const s = baton.push(`loop-${i}`);
      const t = i % 2 === 0 ? baton.push(`loop-inner-${i}`) : null;
      assert.equal(await parentSeenByTool(), (t ?? s).uuid);
      if (t) baton.pop(t);
      assert.equal(await parentSeenByTool(), s.uuid);
      baton.pop(s);
      if (i % 50 === 0) {
        gc();
        await sleep(0);
      }
    }
    assert.equal(await parentSeenByTool(), null);
  });

  test('lazy forks: calls in Promise.all from one position all parent there', async () => {
    const a = baton.push('shared-position');
    const parents = await Promise.all(Array.from({ length: 20 }, () => parentSeenByTool()));
    assert.ok(parents.every((p) => p === a.uuid));
    baton.pop(a);
  });

  test('lazy forks: two different stacks do not share a pin', async () => {
    const x = baton.push('x');
    const stackX = baton.fork();
    baton.pop(x);
    const y = baton.push('y');
    const stackY = baton.fork();
    baton.pop(y);
    // Both stacks are empty (the same id), with different bases.
    for (let i = 0; i < 3; i++) {
      assert.equal(await stackX.run(parentSeenByTool), x.uuid);
      assert.equal(await stackY.run(parentSeenByTool), y.uuid);
      assert.equal(await baton.runWithStack(baton.newStack(), parentSeenByTool), null);
      assert.equal(await baton.runWithStack(stackX, parentSeenByTool), x.uuid);
    }
    // A scope pushed on one stack moves only that stack's position.
    const z = stackX.run(() => baton.push('z'));
    assert.equal(await stackX.run(parentSeenByTool), z.uuid);
    assert.equal(await stackY.run(parentSeenByTool), y.uuid);
    stackX.run(() => baton.pop(z));
    assert.equal(await stackX.run(parentSeenByTool), x.uuid);
  });

  test('lazy forks: a bare async tool inside a bare async tool', async () => {
    const top = baton.push('top');
    const r = await tool('outer', {}, async () => {
      // The outer function has not pushed anything: the inner call parents at the caller, and
      // what the inner function leaves open stays on its own fork.
      await tool('leaky-first', {}, async () => { baton.push('left-open-first'); });
      const none = baton.currentScope();
      const direct = await parentSeenByTool();
      const mid = baton.push('mid');
      const underMid = await parentSeenByTool();
      // The inner function leaves a scope open on its own fork: not seen here.
      await tool('leaky', {}, async () => { baton.push('left-open'); });
      const still = baton.currentScope();
      baton.pop(mid);
      const afterPop = await parentSeenByTool();
      return { none, direct, mid: mid.uuid, midParent: mid.parentUuid, underMid, still: still && still.uuid, afterPop };
    });
    assert.equal(r.none, null);
    assert.equal(r.direct, top.uuid);
    assert.equal(r.midParent, top.uuid);
    assert.equal(r.underMid, r.mid);
    assert.equal(r.still, r.mid);
    assert.equal(r.afterPop, top.uuid);
    assert.equal(baton.currentScope()?.uuid, top.uuid);
    baton.pop(top);
  });

  test('lazy forks: a tool inside an entered (subscribed) async tool', async () => {
    const rec = recorder();
    await tool('entered-outer', {}, async () => {
      await tool('entered-inner', {}, async () => { baton.mark('in-inner'); });
    });
    const ev = await rec.done();
    const outer = started(ev, 'entered-outer');
    const inner = started(ev, 'entered-inner');
    assert.equal(inner.parent_uuid, outer.uuid);
    assert.equal(started(ev, 'in-inner').parent_uuid, inner.uuid);

    // Deregistered while the entered call runs: a nested call is bare, on a pin of the entered
    // call's own stack, so it parents under the entered call's scope.
    const rec2 = recorder();
    /** @type {{bare: string | null, mine: string | undefined, again: string | null}} */
    const seen = { bare: null, mine: undefined, again: null };
    await tool('entered-2', {}, async () => {
      await rec2.done();
      seen.mine = baton.currentScope()?.uuid;
      seen.bare = await parentSeenByTool();
      seen.again = await parentSeenByTool();
    });
    assert.ok(seen.mine);
    assert.equal(started(rec2.events, 'entered-2').uuid, seen.mine);
    assert.equal(seen.bare, seen.mine);
    assert.equal(seen.again, seen.mine);
  });

  test('lazy forks: a function that uses Baton gets one stack of its own for the whole call', async () => {
    const top = baton.push('own-stack');
    await tool('t', {}, async () => {
      const st = baton.currentStack();
      assert.equal(st.depth, 0);
      const s = baton.push('x');
      assert.equal(st.depth, 1);
      assert.equal(st.currentScope?.uuid, s.uuid);
      await sleep(1);
      assert.equal(baton.currentStack().depth, 1);
      assert.equal(baton.propagationContext().parent_uuid, s.uuid);
      baton.pop(s);
      assert.equal(baton.propagationContext().parent_uuid, top.uuid);
      assert.equal(baton.traceparent().split('-')[2].length, 16);
    });
    baton.pop(top);
  });

  test('entered async calls: use during and after the call, scopes left open, late first use', async () => {
    const rec = recorder();
    const caller = baton.push('entered-caller');
    /** @type {{during?: string | null, mark?: string, late?: string | null, lateFirst?: string | null}} */
    const seen = {};
    /** @type {() => void} */
    let fired = () => {};
    const done = new Promise((/** @type {(v?: unknown) => void} */ r) => { fired = r; });
    let pending = 2;
    const fire = () => { if (--pending === 0) fired(); };
    // Uses Baton during the call, leaves a scope open, and uses the same store after the end.
    await tool('entered-uses', {}, async () => {
      const s = baton.push('inside');
      seen.during = s.parentUuid;
      baton.push('left-open');
      setTimeout(() => {
        const late = baton.push('late-after-use');
        seen.late = late.parentUuid;
        baton.pop(late);
        fire();
      }, 20);
    });
    // Touches Baton for the first time only after the call ended.
    await tool('entered-late-only', {}, async () => {
      setTimeout(() => {
        baton.mark('late-first-mark');
        const late = baton.push('late-first');
        seen.lateFirst = late.parentUuid;
        baton.pop(late);
        fire();
      }, 20);
    });
    const meanwhile = baton.push('entered-meanwhile');
    await done;
    baton.pop(meanwhile);
    baton.pop(caller);
    const ev = await rec.done();
    const uses = started(ev, 'entered-uses');
    assert.equal(uses.parent_uuid, caller.uuid);
    assert.equal(seen.during, uses.uuid);
    assert.equal(started(ev, 'left-open').parent_uuid, started(ev, 'inside').uuid);
    // The scopes left open end (unwound) before the call's own end event.
    const ends = ev.filter((e) => e.scope_category === 'end').map((e) => e.name);
    assert.ok(ends.indexOf('left-open') < ends.indexOf('entered-uses'), ends.join(','));
    assert.ok(ends.indexOf('inside') < ends.indexOf('entered-uses'), ends.join(','));
    // After the end, both stores parent where the caller was at call time.
    assert.equal(seen.late, caller.uuid);
    assert.equal(seen.lateFirst, caller.uuid);
    assert.equal(started(ev, 'late-first-mark').parent_uuid, caller.uuid);
  });
}
