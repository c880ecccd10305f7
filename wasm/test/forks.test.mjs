// Lazy forks in the wasm package: the same cases as the Node package's
// (node/test/cases/forks.mjs, written once against the API both packages offer).
import * as baton from '../dist/index.mjs';
import { lazyForkCases } from '../../node/test/cases/forks.mjs';

lazyForkCases(baton);
