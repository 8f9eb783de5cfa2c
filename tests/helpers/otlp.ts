/**
 * A real OTLP/HTTP trace receiver for tests: a node:http server on a free
 * loopback port that decodes what Fulcrum POSTs to /v1/traces, in either
 * encoding (JSON, or binary protobuf through the small decoder below, written
 * from opentelemetry-proto's trace.proto and independent of src/tracing).
 * `mode` makes it a collector that answers 200, answers 500, or never answers.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly name: string;
  /** 2 server, 3 client. */
  readonly kind: number;
  /** Unix nanoseconds. */
  readonly start: bigint;
  readonly end: bigint;
  readonly attributes: Record<string, string | number>;
  /** Status.code: 0 unset, 2 error. */
  readonly statusCode: number;
  readonly resource: Record<string, string | number>;
  readonly scope: string;
}

export interface Export {
  readonly contentType: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly spans: ReceivedSpan[];
}

export type ReceiverMode = 'ok' | 'fail' | 'hang';

export interface OtlpReceiver {
  readonly url: string;
  readonly exports: Export[];
  /** Every span received so far. */
  spans(): ReceivedSpan[];
  /** Requests that arrived, answered or not. */
  readonly requests: number;
  mode: ReceiverMode;
  close(): Promise<void>;
}

// ---- protobuf wire format --------------------------------------------------

type Field = { n: number; wire: number; v: bigint | Buffer };

function readVarint(b: Buffer, at: { i: number }): bigint {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const byte = b[at.i++];
    if (byte === undefined) throw new Error('truncated varint');
    v |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return v;
    shift += 7n;
  }
}

/** One message's fields in order (repeated fields appear once each). */
function fields(b: Buffer): Field[] {
  const out: Field[] = [];
  const at = { i: 0 };
  while (at.i < b.length) {
    const key = Number(readVarint(b, at));
    const n = key >> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ n, wire, v: readVarint(b, at) });
    else if (wire === 1) {
      out.push({ n, wire, v: b.readBigUInt64LE(at.i) });
      at.i += 8;
    } else if (wire === 5) {
      out.push({ n, wire, v: BigInt(b.readUInt32LE(at.i)) });
      at.i += 4;
    } else if (wire === 2) {
      const len = Number(readVarint(b, at));
      out.push({ n, wire, v: b.subarray(at.i, at.i + len) });
      at.i += len;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

const msgs = (fs: Field[], n: number) => fs.filter((f) => f.n === n).map((f) => f.v as Buffer);
const one = (fs: Field[], n: number) => fs.find((f) => f.n === n)?.v;
const str = (fs: Field[], n: number) => ((one(fs, n) as Buffer | undefined)?.toString('utf8') ?? '');
const hex = (fs: Field[], n: number) => ((one(fs, n) as Buffer | undefined)?.toString('hex') ?? '');

/** KeyValue { key 1; AnyValue value 2 { string 1; bool 2; int 3; double 4 } }. */
function keyValues(bufs: Buffer[]): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const b of bufs) {
    const kv = fields(b);
    const value = fields((one(kv, 2) as Buffer | undefined) ?? Buffer.alloc(0));
    const s = one(value, 1);
    const i = one(value, 3);
    out[str(kv, 1)] = s !== undefined ? (s as Buffer).toString('utf8') : Number(BigInt.asIntN(64, i as bigint));
  }
  return out;
}

export function decodeProtobuf(body: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const rsBuf of msgs(fields(body), 1)) {
    const rs = fields(rsBuf);
    const resource = keyValues(msgs(fields((one(rs, 1) as Buffer | undefined) ?? Buffer.alloc(0)), 1));
    for (const ssBuf of msgs(rs, 2)) {
      const ss = fields(ssBuf);
      const scope = str(fields((one(ss, 1) as Buffer | undefined) ?? Buffer.alloc(0)), 1);
      for (const spanBuf of msgs(ss, 2)) {
        const s = fields(spanBuf);
        const status = fields((one(s, 15) as Buffer | undefined) ?? Buffer.alloc(0));
        spans.push({
          traceId: hex(s, 1),
          spanId: hex(s, 2),
          traceState: str(s, 3),
          parentSpanId: hex(s, 4),
          name: str(s, 5),
          kind: Number(one(s, 6) ?? 0n),
          start: one(s, 7) as bigint,
          end: one(s, 8) as bigint,
          attributes: keyValues(msgs(s, 9)),
          statusCode: Number(one(status, 3) ?? 0n),
          resource,
          scope,
        });
      }
    }
  }
  return spans;
}

// ---- JSON ------------------------------------------------------------------

interface JsonKv { key: string; value: { stringValue?: string; intValue?: string | number } }

function jsonKeyValues(kvs: JsonKv[] | undefined): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  for (const kv of kvs ?? []) out[kv.key] = kv.value.stringValue ?? Number(kv.value.intValue);
  return out;
}

export function decodeJson(body: Buffer): ReceivedSpan[] {
  const doc = JSON.parse(body.toString('utf8')) as {
    resourceSpans: { resource?: { attributes?: JsonKv[] }; scopeSpans: { scope?: { name?: string }; spans: Record<string, unknown>[] }[] }[];
  };
  const spans: ReceivedSpan[] = [];
  for (const rs of doc.resourceSpans) {
    const resource = jsonKeyValues(rs.resource?.attributes);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        spans.push({
          traceId: s.traceId as string,
          spanId: s.spanId as string,
          parentSpanId: (s.parentSpanId as string | undefined) ?? '',
          traceState: (s.traceState as string | undefined) ?? '',
          name: s.name as string,
          kind: s.kind as number,
          start: BigInt(s.startTimeUnixNano as string),
          end: BigInt(s.endTimeUnixNano as string),
          attributes: jsonKeyValues(s.attributes as JsonKv[]),
          statusCode: (s.status as { code?: number } | undefined)?.code ?? 0,
          resource,
          scope: ss.scope?.name ?? '',
        });
      }
    }
  }
  return spans;
}

// ---- the receiver ----------------------------------------------------------

export async function startOtlpReceiver(mode: ReceiverMode = 'ok'): Promise<OtlpReceiver> {
  const exports: Export[] = [];
  let requests = 0;
  const hanging = new Set<ServerResponse>();
  const server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    requests++;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (receiver.mode === 'hang') {
        hanging.add(res);
        return;
      }
      if (receiver.mode === 'fail') {
        res.writeHead(500).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const contentType = req.headers['content-type'] ?? '';
      const spans = contentType === 'application/json' ? decodeJson(body) : decodeProtobuf(body);
      exports.push({ contentType, headers: req.headers, spans });
      const answer = contentType === 'application/json' ? '{}' : '';
      res.writeHead(200, { 'content-type': contentType }).end(answer);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const receiver: OtlpReceiver = {
    url: `http://127.0.0.1:${port}/v1/traces`,
    exports,
    spans: () => exports.flatMap((e) => e.spans),
    get requests() {
      return requests;
    },
    mode,
    close: () => new Promise<void>((resolve) => {
      for (const r of hanging) r.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  return receiver;
}
