import { blamesBackend, classifyUpstreamError, isLocalResourceError } from '../../src/upstream/errors';

// The one mapping from upstream failure to status (SPEC section 4), as a table.
describe('classifyUpstreamError', () => {
  test.each([
    ['ECONNREFUSED', 'connect-failure', 502],
    ['EHOSTUNREACH', 'connect-failure', 502],
    ['ENETUNREACH', 'connect-failure', 502],
    ['ENOTFOUND', 'connect-failure', 502],
    ['EAI_AGAIN', 'connect-failure', 502],
    ['UND_ERR_CONNECT_TIMEOUT', 'connect-failure', 504],
    ['ECONNRESET', 'reset', 502],
    ['EPIPE', 'reset', 502],
    ['UND_ERR_SOCKET', 'reset', 502],
    ['UND_ERR_HEADERS_TIMEOUT', 'timeout', 504],
    ['ETIMEDOUT', 'timeout', 504],
    ['UND_ERR_CLOSED', 'unavailable', 503],
    ['UND_ERR_DESTROYED', 'unavailable', 503],
    ['UND_ERR_INVALID_ARG', 'invalid-request', 400],
    ['UND_ERR_NOT_SUPPORTED', 'invalid-request', 400],
    ['FULCRUM_CONNECT_TIMEOUT', 'connect-failure', 504],
    ['FULCRUM_UPSTREAM_CLOSED', 'reset', 502],
    ['FULCRUM_RESPONSE_TIMEOUT', 'timeout', 504],
    ['FULCRUM_POOL_CLOSED', 'unavailable', 503],
    ['FULCRUM_BODY_LENGTH', 'invalid-request', 400],
    ['FULCRUM_INVALID_REQUEST', 'invalid-request', 400],
    ['EMFILE', 'local-resource', 503],
    ['ENFILE', 'local-resource', 503],
    ['ENOMEM', 'local-resource', 503],
    ['ENOBUFS', 'local-resource', 503],
    ['FULCRUM_BAD_RESPONSE', 'error', 502],
    ['FULCRUM_INTERNAL_ERROR', 'internal', 500],
    ['SOMETHING_NEW', 'error', 502],
  ])('%s → %s, %i', (code, kind, status) => {
    const f = classifyUpstreamError(Object.assign(new Error('x'), { code }));
    expect(f.kind).toBe(kind);
    expect(f.status).toBe(status);
    expect(f.message).not.toMatch(/\n/);
  });

  test('values without a code are a plain 502', () => {
    expect(classifyUpstreamError(new Error('boom')).status).toBe(502);
    expect(classifyUpstreamError(undefined).status).toBe(502);
    expect(classifyUpstreamError('text').status).toBe(502);
  });
});

test('only failures of the backend count against it', () => {
  expect(['connect-failure', 'reset', 'timeout', 'error'].every((k) => blamesBackend(k as never))).toBe(true);
  expect(blamesBackend('unavailable')).toBe(false);
  expect(blamesBackend('invalid-request')).toBe(false);
  expect(blamesBackend('internal')).toBe(false);
  // Issue 20, F3: Fulcrum's own fd or memory exhaustion is not the backend's failure.
  expect(blamesBackend('local-resource')).toBe(false);
});

test('a local resource failure is told apart by its code, as a connect error or a probe error carries it', () => {
  const emfile = Object.assign(new Error('connect EMFILE 127.0.0.1:80 - Local (undefined:undefined)'), { code: 'EMFILE', syscall: 'connect' });
  expect(isLocalResourceError(emfile)).toBe(true);
  expect(isLocalResourceError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' }))).toBe(false);
  expect(isLocalResourceError(new Error('no code'))).toBe(false);
});
