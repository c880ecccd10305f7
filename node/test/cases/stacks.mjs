// Stack cases run against both packages: node/test/stacks.test.mjs passes the Node package,
// wasm/test/stacks.test.mjs the wasm one.
// @ts-check
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = /** @type {() => void} */ (vm.runInNewContext('gc'));

/**
 * Registers the stack tests for one package.
 * @param {typeof import('../../index.mjs')} baton
 * @param {number} depth scopes deep enough that a recursive drop overflows the package's
 *   native stack (Node: 8 MiB of native stack; wasm: the module's 1 MiB)
 */
export function stackCases(baton, depth) {
  // Each scope holds its parent alive; a chain this deep, freed when its stack is collected,
  // used to be dropped recursively in the core and overflowed the native (or wasm) stack:
  // a segfault in Node, a RangeError out of a finalizer in the wasm module.
  test(`a stack with ${depth} scopes never popped is collected without a crash`, async () => {
    let innermost = '';
    (() => {
      const stack = baton.newStack();
      baton.runWithStack(stack, () => {
        for (let i = 0; i < depth; i++) innermost = baton.push(`deep-${i}`).uuid;
      });
      assert.equal(stack.depth, depth);
    })();
    for (let i = 0; i < 5; i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    // The runtime is still usable afterwards.
    const seen = await baton.tool('after', { ok: true }, async (a) => a);
    assert.deepEqual(seen, { ok: true });
    assert.equal(innermost.length, 36);
  });
}
