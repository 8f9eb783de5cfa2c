/**
 * The one table of error codes (src/errors.ts): every FULCRUM_* code has a
 * kind and what it leads to, and the places that use codes take them from it.
 */
import { ERRORS, FulcrumError, exitCodeOf, fulcrumError, isFulcrumError, type FulcrumErrorCode } from '../src/errors';
import { UPSTREAM_ERRORS } from '../src/upstream/types';
import { blamesBackend, classifyUpstreamError } from '../src/upstream/errors';
import { BODY_TOO_LARGE } from '../src/proxy/body-limit';
import { BODY_TIMEOUT } from '../src/proxy/exchange';

const codes = Object.keys(ERRORS) as FulcrumErrorCode[];
const row = (code: FulcrumErrorCode) => ERRORS[code] as { kind: string; exit?: number; status?: number; message?: string };

test('start-up and usage codes end the process with their exit code; the rest answer a request with a status and one line', () => {
  for (const code of codes) {
    const r = row(code);
    if (r.kind === 'startup' || r.kind === 'usage') {
      expect([code, exitCodeOf(new FulcrumError(code, 'x'))]).toEqual([code, r.kind === 'usage' ? 2 : 1]);
    } else {
      expect([code, typeof r.status, typeof r.message]).toEqual([code, 'number', 'string']);
      expect(r.message).not.toMatch(/\n/);
    }
  }
});

test('isFulcrumError classifies by .code from the table, not by a prefix or instanceof', () => {
  expect(isFulcrumError(new FulcrumError('FULCRUM_USAGE', 'x'))).toBe(true);
  expect(isFulcrumError(fulcrumError('FULCRUM_BODY_TIMEOUT', 'x'))).toBe(true);
  // From another realm (a plain object with the code) as well.
  expect(isFulcrumError({ code: 'FULCRUM_LISTEN_FAILED', message: 'x' })).toBe(true);
  expect(isFulcrumError(Object.assign(new Error('x'), { code: 'FULCRUM_MADE_UP' }))).toBe(false);
  expect(isFulcrumError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(false);
  expect(isFulcrumError(undefined)).toBe(false);
});

test('the codes the clients, the body limit and the exchange fail with are all in the table', () => {
  for (const code of [...Object.values(UPSTREAM_ERRORS), BODY_TOO_LARGE, BODY_TIMEOUT]) expect(codes).toContain(code);
});

test('the failure table answers each of our upstream codes as the table says, and blames the backend only for its own kinds', () => {
  for (const code of Object.values(UPSTREAM_ERRORS)) {
    const f = classifyUpstreamError(fulcrumError(code, 'x'));
    expect([code, f.kind, f.status, f.message]).toEqual([code, row(code).kind, row(code).status, row(code).message]);
  }
  expect(blamesBackend(classifyUpstreamError(fulcrumError('FULCRUM_INTERNAL_ERROR', 'x')).kind)).toBe(false);
  expect(blamesBackend(classifyUpstreamError(fulcrumError('FULCRUM_UPSTREAM_CLOSED', 'x')).kind)).toBe(true);
});
