/** Poll `check` until it returns true, or fail after `timeoutMs` (tests wait on state, never sleep). */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Wait until `progress()` has not changed for `quietMs` (a transfer that has
 * stalled), polling against a deadline.
 */
export function stalled(progress: () => number, what: string, quietMs = 200, timeoutMs = 5000): Promise<void> {
  let last = -1;
  let since = 0;
  return waitFor(() => {
    const now = Date.now();
    const v = progress();
    if (v !== last) {
      last = v;
      since = now;
      return false;
    }
    return now - since >= quietMs;
  }, timeoutMs, what);
}
