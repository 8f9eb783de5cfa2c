import { Writable } from 'node:stream';
import { accessLogObserver, createLogger } from '../src/log';

function capture(level: 'info' | 'warn' = 'info') {
  const lines: string[] = [];
  const sink = new Writable({ write(c: Buffer, _e, cb) { lines.push(...c.toString().split('\n').filter(Boolean)); cb(); } });
  return { lines, logger: createLogger({ level, access: true }, sink) };
}

const record = {
  listener: 'public', method: 'GET', url: '/a?q="quoted"\\back\u0001slash', requestId: 'id "with" quotes',
  remoteAddress: '::1', pool: 'web', backend: '127.0.0.1:9001', status: 200, durationMs: 1.23456789,
  bytes: 12, retries: 1, error: 'reset: "other side closed"\nsecond line',
};

test('access lines are valid JSON with the SPEC keys, whatever the URL and request id hold', () => {
  const { lines, logger } = capture();
  accessLogObserver(logger)(record);
  expect(lines).toHaveLength(1);
  const line = JSON.parse(lines[0]);
  for (const k of ['time', 'method', 'url', 'status', 'pool', 'backend', 'durationMs', 'bytes', 'requestId', 'remoteAddress']) {
    expect(line).toHaveProperty(k);
  }
  expect(line).toMatchObject({ level: 30, msg: 'request', url: record.url, requestId: record.requestId, error: record.error, durationMs: 1.235, status: 200 });
  expect(typeof line.time).toBe('number');
});

test('access lines are written whatever log.level says (SPEC: log.access is the switch)', () => {
  const { lines, logger } = capture('warn');
  accessLogObserver(logger)(record);
  logger.info('not at warn');
  expect(lines).toHaveLength(1);
  expect(JSON.parse(lines[0])).toMatchObject({ msg: 'request', level: 30 });
});
