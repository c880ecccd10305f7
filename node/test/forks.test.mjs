// Lazy forks in the Node package: the cases are shared with the wasm package
// (test/cases/forks.mjs). Run: node --test test/
// @ts-check
import * as baton from '../index.mjs';
import { lazyForkCases } from './cases/forks.mjs';

lazyForkCases(baton);
