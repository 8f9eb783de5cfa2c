/**
 * The self-test of Node's parser binding (src/http1/parser.ts) and the choice
 * of HTTP/1.1 engine it feeds: the binding of this Node passes; a binding
 * that behaves differently, or FULCRUM_HTTP1=node, means the fallback.
 */
import { HTTPParser, http1FallbackNotice, http1SettingProblem, methods, selfTest, type Http1Engine, type ParserModule } from '../../src/http1/parser';

const real = { HTTPParser: HTTPParser!, methods: [...methods] } as ParserModule;

describe('selfTest', () => {
  test("this Node's binding behaves as Http1Server and UpstreamClient expect", () => {
    expect(selfTest(real)).toBeUndefined();
  });

  test('method numbers that mean other methods: the canned requests differ', () => {
    expect(selfTest({ ...real, methods: [...methods.slice(1), methods[0]!] })).toMatch(/^canned requests/);
  });

  test('a binding whose execute() throws: the reason says so', () => {
    const Broken = class extends (HTTPParser as unknown as new () => object) {
      execute(): never {
        throw new Error('no');
      }
    };
    expect(selfTest({ ...real, HTTPParser: Broken as unknown as ParserModule['HTTPParser'] })).toBe('the self-test threw: no');
  });

  test('a binding that keeps the body on the parser (no Buffer per chunk): the reason says so', () => {
    const P = HTTPParser as unknown as { new (): Record<number, unknown>; kOnBody: number };
    const Old = class extends P {
      constructor() {
        super();
        // Wrap whatever onBody the test installs: hand it (buffer, start, length) as very old Nodes did.
        let installed: ((...a: unknown[]) => void) | undefined;
        Object.defineProperty(this, P.kOnBody, {
          get: () => (b: Buffer) => installed?.(b.toString('latin1'), 0, b.length),
          set: (f: (...a: unknown[]) => void) => {
            installed = f;
          },
        });
      }
    };
    expect(selfTest({ ...real, HTTPParser: Old as unknown as ParserModule['HTTPParser'] })).toMatch(/not a Buffer/);
  });
});

describe('the engine', () => {
  const isolated = (value: string | undefined): typeof import('../../src/http1/parser') => {
    const saved = process.env.FULCRUM_HTTP1;
    if (value === undefined) delete process.env.FULCRUM_HTTP1;
    else process.env.FULCRUM_HTTP1 = value;
    try {
      let m!: typeof import('../../src/http1/parser');
      jest.isolateModules(() => {
        m = require('../../src/http1/parser');
      });
      return m;
    } finally {
      if (saved === undefined) delete process.env.FULCRUM_HTTP1;
      else process.env.FULCRUM_HTTP1 = saved;
    }
  };

  test.each([[undefined], ['']])('FULCRUM_HTTP1=%p: the binding, nothing logged', (value) => {
    const m = isolated(value);
    expect(m.http1Engine).toEqual({ engine: 'llhttp', forced: false });
    expect(m.llhttpAvailable).toBe(true);
    expect(m.http1FallbackNotice()).toBeUndefined();
    expect(m.http1SettingProblem()).toBeUndefined();
  });

  test('FULCRUM_HTTP1=node: the fallback, an info line', () => {
    const m = isolated('node');
    expect(m.llhttpAvailable).toBe(false);
    expect(m.http1FallbackNotice()).toMatchObject({ level: 'info', reason: 'FULCRUM_HTTP1=node' });
    // The binding is still there for what drives it directly (tests of Http1Server).
    expect(m.HTTPParser).toBeDefined();
  });

  test('an unknown value: a start-up refusal naming it', () => {
    const m = isolated('Node');
    expect(m.http1SettingProblem()).toContain('FULCRUM_HTTP1="Node"');
  });

  test('a failed self-test: a warn line with the reason', () => {
    const engine: Http1Engine = { engine: 'node', forced: false, reason: 'canned responses: got []' };
    expect(http1FallbackNotice(engine)).toMatchObject({ level: 'warn', reason: 'canned responses: got []' });
    expect(http1SettingProblem(engine)).toBeUndefined();
  });
});
