import { Transform, type TransformCallback } from 'node:stream';

import { fulcrumError } from '../errors';

export const BODY_TOO_LARGE = 'FULCRUM_BODY_TOO_LARGE';

/**
 * Counts a chunked request body as it streams and fails it past `max` bytes.
 * Bodies with a Content-Length never need it: they are refused before a
 * byte is read, and node:http's parser holds them to their length.
 */
export class BodyLimit extends Transform {
  readonly #max: number;
  /** Decides, once the source has ended, whether the body really is complete (an error fails it instead). */
  readonly #beforeEnd: ((done: (err: Error | null) => void) => void) | undefined;
  #seen = 0;

  constructor(max: number, beforeEnd?: (done: (err: Error | null) => void) => void) {
    super();
    this.#max = max;
    this.#beforeEnd = beforeEnd;
  }

  override _flush(done: TransformCallback): void {
    if (this.#beforeEnd === undefined) done();
    else this.#beforeEnd((err) => done(err));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#seen += chunk.length;
    if (this.#seen > this.#max) {
      done(fulcrumError(BODY_TOO_LARGE, `request body larger than ${this.#max} bytes`));
      return;
    }
    done(null, chunk);
  }
}
