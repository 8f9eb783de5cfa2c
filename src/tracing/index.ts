/** OpenTelemetry tracing (SPEC section 12): W3C trace context, spans, OTLP/HTTP export. */
import fs from 'node:fs';
import path from 'node:path';
import type { TracingConfig } from '../config/types';
import { Tracer, type Tracing } from './tracer';

export { Tracer, ServerTrace, ClientSpan, type Tracing } from './tracer';
export { EXPORT_TIMEOUT_MS } from './exporter';

let version: string | undefined;

/** service.version of the spans: package.json's, read once (src/ and dist/ both sit beside it). */
function fulcrumVersion(): string {
  version ??= (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

/** A Tracer for `config`, or null without one. */
export function makeTracer(config: TracingConfig | undefined, onDropped: (n: number) => void): Tracer | null {
  return config === undefined ? null : new Tracer(config, { version: fulcrumVersion(), onDropped });
}

/** A reload with a different `tracing`: the new tracer serves from now on; the old one sends what it holds, then stops. */
export function swapTracer(tracing: Tracing, next: TracingConfig | undefined, onDropped: (n: number) => void, closeMs: number): void {
  const old = tracing.tracer;
  tracing.tracer = makeTracer(next, onDropped);
  void old?.close(closeMs);
}
