// vitest global setup: builds native/ with CMake once before the test files run (they run in
// parallel and would otherwise race to build it). A failed build is recorded, and the tests that
// need it fail with its output; a missing cmake makes them skip with a note.
import { buildNative, recordBuild } from './native-build.js';

export default function setup(): void {
  const b = buildNative();
  recordBuild(b);
  if (!b.ok) console.warn(`rrec-emotion: native C++ tests: ${b.reason}`);
}
