import type { Server as NetServer, Socket } from 'node:net';

/** RFC 9113 §3.4: what a client with prior knowledge sends first. */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * A cleartext listener with `http2: true` (SPEC 9.2): one port for HTTP/1.1
 * and for HTTP/2 with prior knowledge. Each new connection's first bytes
 * are read: the HTTP/2 connection preface hands the socket to `h2`, anything
 * else to the HTTP/1.1 server's own connection handling, with the bytes read
 * so far. A connection that sends nothing decisive within `timeoutMs()` is
 * closed, as one that sends no headers would be.
 *
 * `h2` takes an HTTP/2 socket with the bytes read so far (node:http2's
 * server or Fulcrum's own connection). `server` is the bound HTTP/1.1 server; the handlers it had for
 * 'connection' when this is called are the ones that get HTTP/1.1 sockets
 * (listeners added later, such as the connection tracking of src/listen.ts,
 * see every socket as before). `toHttp1` is how the HTTP/1.1 side takes a
 * socket with bytes already read (Http1Server.accept); without it (node:http)
 * the bytes are handed over as a 'data' event.
 */
export function serveH2c(server: NetServer, h2: (socket: Socket, head: Buffer) => void, timeoutMs: () => number, toHttp1?: (socket: Socket, head: Buffer) => void): void {
  const own = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const http1 = toHttp1 ?? ((socket: Socket, head: Buffer) => {
    for (const fn of own) fn.call(server, socket);
    // node:http reads its socket inside Node (consume) but parses what a
    // 'data' event brings the same way: the bytes read so far go that way.
    socket.emit('data', head);
  });
  server.on('connection', (socket: Socket) => sniff(socket, h2, http1, timeoutMs()));
}

function sniff(socket: Socket, h2: (socket: Socket, head: Buffer) => void, http1: (socket: Socket, head: Buffer) => void, timeoutMs: number): void {
  let head: Buffer = Buffer.alloc(0);
  const timer = timeoutMs > 0 ? setTimeout(() => socket.destroy(), timeoutMs) : undefined;
  timer?.unref();
  const done = () => {
    clearTimeout(timer);
    socket.off('data', onData);
    socket.off('error', onError);
    socket.off('end', onEnd);
  };
  const onError = () => {
    clearTimeout(timer);
    socket.destroy();
  };
  // A client that closes before saying anything decisive: nothing to answer.
  const onEnd = () => {
    done();
    socket.destroy();
  };
  const onData = (chunk: Buffer) => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const n = Math.min(head.length, PREFACE.length);
    if (head.compare(PREFACE, 0, n, 0, n) !== 0) {
      done();
      socket.pause();
      http1(socket, head);
      return;
    }
    if (head.length < PREFACE.length) return; // a prefix of the preface so far
    done();
    socket.pause();
    h2(socket, head);
  };
  socket.on('data', onData);
  socket.on('error', onError);
  socket.on('end', onEnd);
}
