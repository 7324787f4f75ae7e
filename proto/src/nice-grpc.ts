import { create, fromBinary, toBinary, type DescMessage, type MessageInitShape, type MessageShape } from '@bufbuild/protobuf';
import type { GenService, GenServiceMethods } from '@bufbuild/protobuf/codegenv2';
import type { MethodDefinition } from 'nice-grpc';

/*
 * nice-grpc takes ts-proto or grpc-js service definitions; protobuf-es v2 generates
 * descriptors, and no maintained package bridges the two. This is that bridge, small and
 * typed: a nice-grpc definition built from a protobuf-es service descriptor, so that
 * servers and clients see the generated message types (requests accept the init shape,
 * `create()` fills the rest).
 */

type Streams<K> = K extends 'client_streaming' | 'bidi_streaming' ? true : false;
type Replies<K> = K extends 'server_streaming' | 'bidi_streaming' ? true : false;

/** The nice-grpc method definition of one protobuf-es method. */
export type NiceMethod<M> = M extends { methodKind: infer K; input: infer I extends DescMessage; output: infer O extends DescMessage }
  ? MethodDefinition<MessageInitShape<I>, MessageShape<I>, MessageInitShape<O>, MessageShape<O>, Streams<K>, Replies<K>>
  : never;

/** The nice-grpc service definition of a protobuf-es service, method by local name. */
export type NiceService<S extends GenServiceMethods> = { [K in keyof S]: NiceMethod<S[K]> };

/** A nice-grpc service definition (for `createServer().add` and `createClient`) from a generated service. */
export function niceService<S extends GenServiceMethods>(service: GenService<S>): NiceService<S> {
  const definition: Record<string, MethodDefinition<unknown, unknown, unknown, unknown>> = {};
  for (const m of service.methods) {
    const input = m.input;
    const output = m.output;
    definition[m.localName] = {
      // gRPC's path is /package.Service/Method (PROTOCOL-HTTP2.md)
      path: `/${service.typeName}/${m.name}`,
      requestStream: m.methodKind === 'client_streaming' || m.methodKind === 'bidi_streaming',
      responseStream: m.methodKind === 'server_streaming' || m.methodKind === 'bidi_streaming',
      requestSerialize: (value) => toBinary(input, create(input, value as MessageInitShape<typeof input>)),
      requestDeserialize: (bytes) => fromBinary(input, bytes),
      responseSerialize: (value) => toBinary(output, create(output, value as MessageInitShape<typeof output>)),
      responseDeserialize: (bytes) => fromBinary(output, bytes),
      options: m.idempotency === 1 ? { idempotencyLevel: 'NO_SIDE_EFFECTS' } : m.idempotency === 2 ? { idempotencyLevel: 'IDEMPOTENT' } : {},
    };
  }
  return definition as NiceService<S>;
}
