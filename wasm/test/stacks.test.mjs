// Stack cases in the wasm package: the same as the Node package's (node/test/cases/stacks.mjs).
import * as baton from '../dist/index.mjs';
import { stackCases } from '../../node/test/cases/stacks.mjs';

stackCases(baton, 300000); // the old recursive drop crashed at this depth
