import { STATUS_CODES } from 'node:http';
import type { ProxyResponse } from '../proxy/message';
import type { HeaderRules } from '../routes/header-rules';
import type { Refusal } from './index';

/** A relayed auth-service body on a WebSocket upgrade is buffered (there is no response to stream to); beyond this it is cut. */
const UPGRADE_BODY_MAX = 64 * 1024;

/**
 * Write a refusal to the client: Fulcrum's own one line, or the auth
 * service's answer as it came (status, headers, body streamed with
 * backpressure), with the route's responseHeaders (SPEC 8.1: every answer
 * on the route). `done(bytes)` once it is written, or the client left.
 */
export function sendRefusal(res: ProxyResponse, r: Refusal, rules: HeaderRules | null, done: (bytes: number) => void): void {
  if (typeof r.body === 'string') {
    const body = `${r.body}\n`;
    const length = Buffer.byteLength(body);
    const headers = ['content-type', 'text/plain; charset=utf-8', 'content-length', String(length), ...r.headers];
    res.writeHead(r.status, rules === null ? headers : rules.apply(headers));
    res.end(body);
    done(length);
    return;
  }
  const body = r.body;
  let bytes = 0;
  let finished = false;
  const finish = () => {
    if (finished) return;
    finished = true;
    done(bytes);
  };
  res.writeHead(r.status, rules === null ? [...r.headers] : rules.apply(r.headers));
  res.on('close', () => {
    body.destroy();
    finish();
  });
  body.on('data', (chunk: Buffer) => {
    bytes += chunk.length;
    if (!res.write(chunk)) {
      body.pause();
      res.once('drain', () => body.resume());
    }
  });
  body.once('end', () => {
    res.end();
    finish();
  });
  body.once('error', () => {
    res.destroy();
    finish();
  });
}

/** A refusal of a WebSocket upgrade as the bytes of a whole answer after which the connection closes. */
export function answerUpgradeRefusal(r: Refusal, rules: HeaderRules | null, write: (answer: string) => void): void {
  const list = rules === null ? r.headers : rules.apply(r.headers);
  const head = (length: number, extra = '') => {
    let text = `HTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? 'unknown'}\r\n`;
    for (let i = 0; i < list.length; i += 2) {
      const name = list[i]!.toLowerCase();
      if (name !== 'content-length' && name !== 'connection') text += `${list[i]}: ${list[i + 1]}\r\n`;
    }
    return `${text}${extra}content-length: ${length}\r\nconnection: close\r\n\r\n`;
  };
  if (typeof r.body === 'string') {
    const body = `${r.body}\n`;
    write(head(Buffer.byteLength(body), 'content-type: text/plain; charset=utf-8\r\n') + body);
    return;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  const body = r.body;
  body.on('data', (c: Buffer) => {
    if (size + c.length > UPGRADE_BODY_MAX) {
      body.destroy();
      return;
    }
    chunks.push(c);
    size += c.length;
  });
  // The answer goes out as a string (as every refusal of an upgrade does): the body as UTF-8, its length counted the same way.
  const send = () => {
    const text = Buffer.concat(chunks).toString('utf8');
    write(head(Buffer.byteLength(text)) + text);
  };
  body.once('end', send);
  body.once('close', () => {
    if (!body.readableEnded) send();
  });
}
