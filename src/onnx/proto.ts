/**
 * Table-driven ONNX protobuf codec: walks `schema.ts` to turn bytes into the plain objects of
 * `proto-types.ts` and back.
 *
 * Decode: bytes/raw_data/strings-as-bytes are views into the input (no copy); packed TensorProto
 * numbers become typed arrays (copied, as the input may be unaligned; bit patterns kept, so NaN
 * payloads survive). Fields the schema does not know are kept raw in `unknownFields`. A known field
 * that arrives with an unexpected wire type is also kept as unknown rather than rejected: that is
 * what protobuf's own parsers do, and it keeps the bytes lossless. Repeated scalars are accepted
 * packed and unpacked. A singular field seen twice keeps the last value (sub-messages are not merged).
 * Every failure is FrugalError('E_DECODE') naming the field path and byte offset.
 *
 * Encode: two passes over the object. The size pass records, in pre-order, the byte length of every
 * sub-message and packed payload; the write pass consumes those lengths in the same order to write
 * length prefixes, so encoding is O(n) and never re-encodes a child. Known fields go out in field-
 * number order, then `unknownFields`: the order protobuf's C++/Python serializers use, so their files
 * re-encode byte-identically. Output is a chunk list; large byte fields are the caller's views.
 */
export { chunksByteLength, concatChunks } from './wire.js';
export { MAX_DEPTH } from './proto-plan.js';
export { decodeBySchema, decodeMessage } from './proto-decode.js';
export { encodeBySchema, encodeMessage, encodeMessageToBytes } from './proto-encode.js';
