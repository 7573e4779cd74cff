/** The ONNX codec: the only part of Frugal that knows the protobuf wire format. */
export { decodeModel, decodeWarnings, modelFromProto, typeFromProto, type DecodeOptions } from './decode.js';
export { encodeModel, encodeModelToBytes, modelToProto, type EncodeOptions, type ExternalPlacer } from './encode.js';
export { loadModel, saveModel, readTensorFile, writeTensorFile, decodeTensor, encodeTensor, writeFileAtomic, writeChunks, type SaveOptions, type SaveResult } from './io.js';
export { decodeMessage, encodeMessage, encodeMessageToBytes } from './proto.js';
export { checkLocationString } from './external-data.js';
