// Without AsyncLocalStorage (browsers, edge runtimes) "the current stack" is a synchronous
// variable: an async call's function has its (lazy) fork for its synchronous part. This file
// loads the package as a browser would see it (no `process.getBuiltinModule`, so no
// AsyncLocalStorage) — in its own process, as every test file is.
import { test } from 'node:test';
import assert from 'node:assert/strict';

const saved = process.getBuiltinModule;
// @ts-ignore: hidden while the facade is created, as in a browser.
process.getBuiltinModule = undefined;
const baton = await import('../dist/index.mjs');
process.getBuiltinModule = saved;

/** What a bare tool call's function sees in its synchronous part (nothing registered). */
function probe() {
  let seen;
  const p = baton.tool('probe', {}, () => {
    const before = baton.currentScope();
    const s = baton.push('probe-inside');
    seen = { before, parent: s.parentUuid, current: baton.currentScope()?.uuid, mine: s.uuid };
    baton.pop(s);
    return null;
  });
  return { p, seen };
}

test('the package was loaded without AsyncLocalStorage: the current stack does not cross an await', async () => {
  const seen = await baton.withScope('w', async (scope) => {
    const sync = baton.currentScope()?.uuid;
    await null;
    return { sync, after: baton.currentScope(), scope: scope.uuid };
  });
  assert.equal(seen.sync, seen.scope);
  assert.equal(seen.after, null);
});

test('without AsyncLocalStorage, a bare async call runs its synchronous part on its own lazy fork', async () => {
  assert.equal(probe().seen.parent, null);
  const a = baton.push('a');
  const r1 = probe();
  assert.equal(r1.seen.before, null, 'a fresh fork has no scope of its own');
  assert.equal(r1.seen.parent, a.uuid);
  assert.equal(r1.seen.current, r1.seen.mine);
  const b = baton.push('b');
  assert.equal(probe().seen.parent, b.uuid);
  baton.pop(b);
  assert.equal(probe().seen.parent, a.uuid);
  // What a function leaves open stays on its own fork.
  await baton.tool('leaky', {}, () => { baton.push('left-open'); return null; });
  assert.equal(baton.currentScope()?.uuid, a.uuid);
  assert.equal(baton.currentStack().depth, 1);
  // Nested: a bare call inside a function that has not used Baton parents at the caller; one
  // inside a function that pushed parents under that scope.
  let nested;
  await baton.tool('outer', {}, () => {
    const direct = probe().seen.parent;
    const mid = baton.push('mid');
    const under = probe().seen.parent;
    baton.pop(mid);
    nested = { direct, under, mid: mid.uuid, midParent: mid.parentUuid };
    return null;
  });
  assert.deepEqual(nested && [nested.direct, nested.under, nested.midParent], [a.uuid, nested && nested.mid, a.uuid]);
  // Two stacks with the same (empty) position do not share a pin.
  const x = baton.push('x');
  const stackX = baton.fork();
  baton.pop(x);
  const y = baton.push('y');
  const stackY = baton.fork();
  baton.pop(y);
  assert.equal(stackX.run(() => probe().seen.parent), x.uuid);
  assert.equal(stackY.run(() => probe().seen.parent), y.uuid);
  assert.equal(stackX.run(() => probe().seen.parent), x.uuid);
  baton.pop(a);
  assert.equal(probe().seen.parent, null);
});

test('without AsyncLocalStorage, a mark from a bare call parents at the caller; events are correct', async () => {
  const events = [];
  const outer = baton.push('sync-outer');
  await baton.tool('t', {}, () => {
    baton.subscribe('late', (e) => events.push(e));
    baton.mark('in-function');
    const s = baton.push('in-scope');
    baton.mark('under-scope');
    baton.pop(s);
    return null;
  });
  baton.pop(outer);
  await baton.flush();
  baton.deregister('subscriber', 'late');
  const by = (n) => events.find((e) => e.name === n && e.scope_category !== 'end');
  assert.equal(by('in-function').parent_uuid, outer.uuid);
  assert.equal(by('in-scope').parent_uuid, outer.uuid);
  assert.equal(by('under-scope').parent_uuid, by('in-scope').uuid);
});
