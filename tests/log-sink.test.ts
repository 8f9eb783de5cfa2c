/**
 * The stdout log sink against a real file and a real pipe (a FIFO): every
 * line arrives whole and in order, a full non-blocking pipe is waited for
 * without spinning, a stalled reader costs bounded memory, and flushSync
 * (process exit) leaves nothing behind.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { LogSink } from '../src/log-sink';
import { waitFor } from './helpers/wait';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fulcrum-logsink-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Lines of varied length, with non-ASCII text, and one longer than any chunk. */
function lines(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const pad = i === n >> 1 ? 'x'.repeat(200_000) : 'é→'.repeat(i % 97);
    out.push(`${JSON.stringify({ i, pad })}\n`);
  }
  return out;
}

/** A FIFO with a non-blocking writer fd and a reader socket that collects until told to stop. */
function fifo(): { writer: number; reader: net.Socket; received: () => string } {
  const p = path.join(dir, 'pipe');
  execFileSync('mkfifo', [p]);
  const readFd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  const writer = fs.openSync(p, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  const reader = new net.Socket({ fd: readFd, readable: true, writable: false });
  reader.pause();
  const chunks: Buffer[] = [];
  reader.on('data', (c: Buffer) => chunks.push(c));
  return { writer, reader, received: () => Buffer.concat(chunks).toString('utf8') };
}

test('a file gets every line, whole and in order, once flushed', async () => {
  const file = path.join(dir, 'out.log');
  const fd = fs.openSync(file, 'w');
  const sink = new LogSink(fd);
  const all = lines(5000);
  for (const l of all) sink.write(l);
  await sink.flush();
  expect(fs.readFileSync(file, 'utf8')).toBe(all.join(''));
  sink.flushSync();
  fs.closeSync(fd);
});

test('flushSync (process exit) writes everything still buffered before it returns', () => {
  const file = path.join(dir, 'out.log');
  const fd = fs.openSync(file, 'w');
  const sink = new LogSink(fd);
  const all = lines(300);
  for (const l of all) sink.write(l);
  sink.flushSync();
  expect(fs.readFileSync(file, 'utf8')).toBe(all.join(''));
  fs.closeSync(fd);
});

test('a full non-blocking pipe is waited for: nothing lost, nothing reordered', async () => {
  const { writer, reader, received } = fifo();
  const sink = new LogSink(writer);
  const all = lines(3000); // ~700 kB: far more than the pipe holds (64 kB)
  for (const l of all) sink.write(l);
  let flushed = false;
  const done = sink.flush().then(() => {
    flushed = true;
  });
  // Several EAGAIN retries (every 10 ms) pass with nobody reading: the rest waits in memory.
  await new Promise((r) => setTimeout(r, 50));
  expect(flushed).toBe(false);
  reader.resume();
  await done;
  await waitFor(() => received().length === all.join('').length);
  expect(received()).toBe(all.join(''));
  sink.flushSync();
  reader.destroy();
  fs.closeSync(writer);
});

test('a stalled reader costs bounded memory: lines past the backlog are dropped and counted', async () => {
  const { writer, reader, received } = fifo();
  const sink = new LogSink(writer, { maxBacklogBytes: 256 * 1024 });
  const all = lines(3000).filter((l) => l.length < 1000);
  const kept: number[] = [];
  for (const l of all) if (sink.write(l)) kept.push((JSON.parse(l) as { i: number }).i);
  expect(kept.length).toBeLessThan(all.length);
  reader.resume();
  await sink.flush();
  await waitFor(() => received().includes('log lines dropped'));
  const got = received().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  const note = got.at(-1)!;
  expect(note).toMatchObject({ level: 40, msg: 'log lines dropped: stdout did not keep up', dropped: all.length - kept.length });
  // Every line the sink took arrives, whole and in order.
  expect(got.slice(0, -1).map((l) => l.i)).toEqual(kept);
  sink.flushSync();
  reader.destroy();
  fs.closeSync(writer);
});

test('a reader that went away (EPIPE) is not an error: lines are discarded', async () => {
  const { writer, reader } = fifo();
  await new Promise((r) => reader.destroy().once('close', r));
  const sink = new LogSink(writer);
  for (const l of lines(1000)) sink.write(l);
  await sink.flush();
  expect(sink.write('{"after":true}\n')).toBe(true);
  sink.flushSync();
  fs.closeSync(writer);
});
