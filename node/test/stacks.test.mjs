// Stack cases in the Node package (shared with wasm: test/cases/stacks.mjs). Run: node --test test/
// @ts-check
import * as baton from '../index.mjs';
import { stackCases } from './cases/stacks.mjs';

stackCases(baton, 1000000); // the old recursive drop crashed at this depth
