/** SPEC section 12: the `tracing` keys, their defaults, and their errors at FILE:LINE:COL. */
import { parseConfig } from '../../src/config';
import { MINIMAL, positions, yaml } from '../config/helpers';

describe('tracing config', () => {
  test('defaults: protobuf, no headers, every trace sampled, service fulcrum, 2048 spans queued', () => {
    const c = parseConfig(yaml('tracing:', '  otlp: { endpoint: "http://127.0.0.1:4318/v1/traces" }', ...MINIMAL), 'f.yaml');
    expect(c.tracing).toEqual({
      otlp: { endpoint: 'http://127.0.0.1:4318/v1/traces', encoding: 'protobuf', headers: {} },
      sampleRatio: 1, serviceName: 'fulcrum', maxQueueSize: 2048,
    });
    expect(parseConfig(yaml(...MINIMAL), 'f.yaml').tracing).toBeUndefined();
  });

  test('headers are interpolated and their names lower-cased', () => {
    const c = parseConfig(yaml('tracing:', '  otlp:', '    endpoint: https://otel:4318/v1/traces', '    encoding: json', '    headers: { Authorization: "Bearer ${T}" }', '  sampleRatio: 0.05', ...MINIMAL), 'f.yaml', { T: 'abc' });
    expect(c.tracing!.otlp).toEqual({ endpoint: 'https://otel:4318/v1/traces', encoding: 'json', headers: { authorization: 'Bearer abc' } });
    expect(c.tracing!.sampleRatio).toBe(0.05);
  });

  test('every problem at its position', () => {
    expect(positions(yaml(
      'tracing:',
      '  otlp:',
      '    endpoint: 127.0.0.1:4318',
      '    encoding: grpc',
      '    headers: { "bad name": x }',
      '  sampleRatio: 1.5',
      '  maxQueueSize: 0',
      '  sampleRate: 1',
      ...MINIMAL,
    ))).toEqual([
      '3:15: tracing.otlp.endpoint: must be an OTLP/HTTP http:// or https:// URL such as http://127.0.0.1:4318/v1/traces, got "127.0.0.1:4318"',
      '4:15: tracing.otlp.encoding: unknown tracing encoding "grpc": expected one of protobuf, json',
      '5:14: tracing.otlp.headers: invalid header name "bad name": use letters, digits and !#$%&\'*+-.^_`|~',
      '6:16: tracing.sampleRatio: must be at most 1',
      '7:17: tracing.maxQueueSize: must be at least 1',
      '8:3: tracing: unknown key "sampleRate" (did you mean "sampleRatio"?)',
    ]);
    expect(positions(yaml('tracing: {}', ...MINIMAL))[0]).toMatch(/^1:10: .*otlp/);
  });
});
