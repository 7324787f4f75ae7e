/**
 * Bytes as a latin1 string (one code unit per byte) straight out of any Uint8Array.
 *
 * `Buffer.prototype.toString('latin1', start, end)` ends in Node's native `latin1Slice`,
 * which reads any ArrayBufferView. A capture chunk is a plain Uint8Array, so going through
 * toString means a Buffer view first (`Buffer.from(array.buffer, offset, length)`): an
 * allocation and ~70 ns per call on top of the ~70 ns of the slice itself (measured on
 * 40 bytes). Request paths, DNS labels and the request text signature rules read are cut
 * this way once per transaction, so the sensor calls the native slice directly. Node has
 * had `latin1Slice` on Buffer.prototype since it had latin1; should it ever go, the view
 * is made as before.
 */
type Slice = (this: Uint8Array, start: number, end: number) => string;

const NATIVE_SLICE = (Buffer.prototype as unknown as { latin1Slice?: Slice }).latin1Slice;

function viaView(this: Uint8Array, start: number, end: number): string {
  return Buffer.from(this.buffer, this.byteOffset + start, end - start).toString('latin1');
}

const SLICE: Slice = typeof NATIVE_SLICE === 'function' ? NATIVE_SLICE : viaView;

/** `bytes[start, end)` as latin1; the range must lie within `bytes`. */
export function latin1(bytes: Uint8Array, start: number, end: number): string {
  return SLICE.call(bytes, start, end);
}
