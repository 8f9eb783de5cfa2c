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
  #seen = 0;

  constructor(max: number) {
    super();
    this.#max = max;
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
