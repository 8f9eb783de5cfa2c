/**
 * Which HTTP/2 implementation Fulcrum uses: its own (src/http2/connection.ts)
 * unless `FULCRUM_HTTP2=node` asks for node:http2's, the one Fulcrum used
 * before (as FULCRUM_HTTP1=node does for HTTP/1.1). Read once at start.
 */
export type Http2EngineName = 'fulcrum' | 'node';

const setting = process.env.FULCRUM_HTTP2;

export const http2Engine: Http2EngineName = setting === 'node' ? 'node' : 'fulcrum';

/** The start-up refusal for an unknown FULCRUM_HTTP2 value, or undefined. */
export function http2SettingProblem(): string | undefined {
  if (setting === undefined || setting === '' || setting === 'node') return undefined;
  return `FULCRUM_HTTP2=${JSON.stringify(setting)} is not a value Fulcrum knows: use FULCRUM_HTTP2=node (node:http2 for HTTP/2) or leave it unset`;
}
