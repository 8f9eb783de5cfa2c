import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * Real gRPC on both sides of Fulcrum: @grpc/grpc-js servers implementing
 * tests/grpc/echo.proto (and grpc.health.v1), and clients for them.
 */

const PROTOS = ['echo.proto', 'health.proto'].map((f) => path.join(__dirname, '..', 'grpc', f));
const definition = protoLoader.loadSync(PROTOS, { keepCase: false, longs: Number, enums: String, defaults: true });
const loaded = grpc.loadPackageDefinition(definition) as unknown as {
  fulcrum: { test: { Echo: grpc.ServiceClientConstructor } };
  grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
};
export const EchoService = loaded.fulcrum.test.Echo;
export const HealthService = loaded.grpc.health.v1.Health;

export interface Msg {
  text?: string;
  count?: number;
  delayMs?: number;
  code?: number;
}

export interface GrpcBackend {
  readonly name: string;
  readonly port: number;
  readonly url: string;
  /** What Check answers: SERVING, NOT_SERVING... */
  health: string;
  /** The deadline each call arrived with (ms left when it arrived; Infinity without one). */
  readonly deadlines: number[];
  /** Calls begun (streaming ones too), for waiting until one reached this backend. */
  calls: number;
  /** Stop at once: open calls break (a backend killed mid-stream). */
  kill(): void;
  close(): Promise<void>;
}

function msLeft(call: { getDeadline(): grpc.Deadline }): number {
  const d = call.getDeadline();
  const at = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(at) ? at - Date.now() : Infinity;
}

function failWith(m: Msg): grpc.ServiceError | null {
  if (!m.code) return null;
  return Object.assign(new Error(`asked for ${m.code}`), { code: m.code, details: `asked for ${m.code}`, metadata: new grpc.Metadata() }) as grpc.ServiceError;
}

/** Trailing metadata every call ends with: which backend answered. */
function trailers(name: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set('x-backend', name);
  return md;
}

export async function startGrpcBackend(name: string): Promise<GrpcBackend> {
  const server = new grpc.Server();
  const state = { health: 'SERVING', deadlines: [] as number[], calls: 0 };
  const begin = (call: { getDeadline(): grpc.Deadline }) => {
    state.calls++;
    state.deadlines.push(msLeft(call));
  };
  server.addService(EchoService.service, {
    Unary(call: grpc.ServerUnaryCall<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      begin(call);
      const m = call.request;
      setTimeout(() => {
        const err = failWith(m);
        if (err !== null) cb(err);
        else cb(null, { text: `${name}:${m.text}` }, trailers(name));
      }, m.delayMs ?? 0);
    },
    Collect(call: grpc.ServerReadableStream<Msg, Msg>, cb: grpc.sendUnaryData<Msg>) {
      begin(call);
      const texts: string[] = [];
      call.on('data', (m: Msg) => texts.push(m.text ?? ''));
      call.on('end', () => cb(null, { text: `${name}:${texts.join(',')}`, count: texts.length }, trailers(name)));
    },
    Expand(call: grpc.ServerWritableStream<Msg, Msg>) {
      begin(call);
      const m = call.request;
      let i = 0;
      const next = () => {
        if (call.cancelled) return;
        if (i >= (m.count ?? 0)) {
          const err = failWith(m);
          if (err !== null) call.emit('error', err);
          else call.end(trailers(name));
          return;
        }
        call.write({ text: `${name}:${m.text}:${i}`, count: i });
        i++;
        setTimeout(next, m.delayMs ?? 0);
      };
      next();
    },
    Chat(call: grpc.ServerDuplexStream<Msg, Msg>) {
      begin(call);
      call.on('data', (m: Msg) => call.write({ text: `${name}:${m.text}` }));
      call.on('end', () => call.end(trailers(name)));
    },
  });
  server.addService(HealthService.service, {
    Check(call: grpc.ServerUnaryCall<{ service: string }, { status: string }>, cb: grpc.sendUnaryData<{ status: string }>) {
      if (call.request.service !== '' && call.request.service !== 'fulcrum.test.Echo') {
        cb({ code: grpc.status.NOT_FOUND, details: 'unknown service' } as grpc.ServiceError);
        return;
      }
      cb(null, { status: state.health });
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return Object.assign(state, {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    kill: () => server.forceShutdown(),
    close: () => new Promise<void>((resolve) => {
      server.tryShutdown(() => resolve());
      // Open calls (a test that ended with one hanging) must not hold the suite.
      setTimeout(() => server.forceShutdown(), 500).unref();
    }),
  });
}

/** An Echo client of `address` (host:port), cleartext HTTP/2 with prior knowledge, or TLS trusting `ca`. */
export function echoClient(address: string, ca?: Buffer): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const creds = ca === undefined ? grpc.credentials.createInsecure() : grpc.credentials.createSsl(ca);
  return new EchoService(address, creds, ca === undefined ? {} : { 'grpc.ssl_target_name_override': 'localhost' }) as never;
}

export interface UnaryResult {
  reply?: Msg;
  error?: grpc.ServiceError;
  /** The trailing metadata the call ended with. */
  trailers?: grpc.Metadata;
}

export function unary(client: grpc.Client, m: Msg, options: grpc.CallOptions = {}): Promise<UnaryResult> {
  return new Promise((resolve) => {
    const out: UnaryResult = {};
    let pending = 2;
    const settle = () => {
      if (--pending === 0) resolve(out);
    };
    const call = (client as unknown as Record<string, (...a: unknown[]) => grpc.ClientUnaryCall>).Unary!(m, new grpc.Metadata(), options, (error: grpc.ServiceError | null, reply?: Msg) => {
      if (error !== null) out.error = error;
      else out.reply = reply;
      settle();
    });
    call.on('status', (s: grpc.StatusObject) => {
      out.trailers = s.metadata;
      settle();
    });
  });
}

export { grpc };
