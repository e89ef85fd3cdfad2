// Schemas at the boundary: the AdmissionReview the apiserver sends, and the parts of a Pod the
// injector reads. Everything else in the pod passes through untouched (additional properties are
// allowed). `null` is accepted where YAML manifests may write an empty key.
import Type from 'typebox';
import { compileCheck } from '../validation.ts';

const nullable = <T extends Type.TSchema>(schema: T) => Type.Optional(Type.Union([schema, Type.Null()]));
const StringMap = Type.Record(Type.String(), Type.String(), { description: 'a map of string keys to string values' });
const StringList = Type.Array(Type.String(), { description: 'a list of strings' });
const UserId = Type.Integer({ minimum: 0, maximum: 2147483647, description: 'an integer from 0 to 2147483647' });
const Name = Type.String({ minLength: 1, maxLength: 253, description: 'a non-empty name' });

const Container = Type.Object({
  name: Name,
  image: Type.Optional(Type.String({ description: 'an image reference' })),
  command: nullable(StringList),
  args: nullable(StringList),
  workingDir: Type.Optional(Type.String({ description: 'an absolute path' })),
  ports: nullable(Type.Array(Type.Object({ containerPort: Type.Integer({ description: 'a port number' }) }))),
  volumeMounts: nullable(
    Type.Array(
      Type.Object({
        name: Name,
        mountPath: Type.String({ minLength: 1, description: 'an absolute path' }),
        subPath: Type.Optional(Type.String({ description: 'a relative path' })),
        subPathExpr: Type.Optional(Type.String({ description: 'a relative path' })),
      }),
    ),
  ),
  securityContext: nullable(Type.Object({ runAsUser: Type.Optional(UserId), runAsGroup: Type.Optional(UserId) })),
});

export const PodSchema = Type.Object({
  metadata: nullable(
    Type.Object({
      name: Type.Optional(Type.String({ description: 'a string' })),
      generateName: Type.Optional(Type.String({ description: 'a string' })),
      namespace: Type.Optional(Type.String({ description: 'a string' })),
      labels: nullable(StringMap),
      annotations: nullable(StringMap),
    }),
  ),
  spec: Type.Object({
    containers: Type.Array(Container, { minItems: 1, description: 'a list of at least one container' }),
    initContainers: nullable(Type.Array(Container)),
    volumes: nullable(Type.Array(Type.Object({ name: Name }))),
    securityContext: nullable(
      Type.Object({ runAsUser: Type.Optional(UserId), runAsGroup: Type.Optional(UserId), fsGroup: Type.Optional(UserId), runAsNonRoot: Type.Optional(Type.Boolean({ description: 'true or false' })) }),
    ),
  }),
});

const GroupVersionKind = Type.Object({ group: Type.String(), version: Type.String(), kind: Type.String() });

export const AdmissionReviewSchema = Type.Object({
  apiVersion: Type.Literal('admission.k8s.io/v1', { description: 'admission.k8s.io/v1' }),
  kind: Type.Literal('AdmissionReview', { description: 'AdmissionReview' }),
  request: Type.Object({
    uid: Type.String({ minLength: 1, maxLength: 128, description: 'a non-empty string (the request UID)' }),
    kind: GroupVersionKind,
    resource: Type.Optional(Type.Object({ group: Type.String(), version: Type.String(), resource: Type.String() })),
    subResource: Type.Optional(Type.String()),
    name: Type.Optional(Type.String({ description: 'a string' })),
    namespace: Type.Optional(Type.String({ maxLength: 63, description: 'a namespace name' })),
    operation: Type.Enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT'], { description: 'one of CREATE, UPDATE, DELETE, CONNECT' }),
    dryRun: Type.Optional(Type.Boolean({ description: 'true or false' })),
    object: Type.Optional(Type.Union([Type.Object({}), Type.Null()], { description: 'an object or null' })),
  }),
});

export type AdmissionReview = Type.Static<typeof AdmissionReviewSchema>;

const AdmissionResponseSchema = Type.Object({
  uid: Type.String(),
  allowed: Type.Boolean(),
  patchType: Type.Optional(Type.Literal('JSONPatch')),
  patch: Type.Optional(Type.String()),
  status: Type.Optional(Type.Object({ status: Type.Literal('Failure'), code: Type.Integer(), reason: Type.String(), message: Type.String() })),
  warnings: Type.Optional(Type.Array(Type.String())),
});

/** The answer: the route's response schema (fastify serialises it from this, without a generic JSON.stringify). */
export const AdmissionAnswerSchema = Type.Object({
  apiVersion: Type.Literal('admission.k8s.io/v1'),
  kind: Type.Literal('AdmissionReview'),
  response: AdmissionResponseSchema,
});

export type AdmissionResponse = Type.Static<typeof AdmissionResponseSchema>;
export type AdmissionAnswer = Type.Static<typeof AdmissionAnswerSchema>;

export const checkPodObject = compileCheck(PodSchema, 'request.object');
/** The same check with field names relative to a manifest (for the offline CLI). */
export const checkPodTemplate = (prefix: string) => compileCheck(PodSchema, prefix);
