// A failed API call in one line, the same for every command and the certificate keeper.
import t from 'tap';
import { ApiException } from '@kubernetes/client-node';
import { describeApiError, statusOf } from '../../src/kube/errors.ts';

void t.test('describeApiError: operation, HTTP status and the apiserver message, on one line', (t) => {
  const forbidden = new ApiException(403, 'Unknown API Status Code!', JSON.stringify({
    kind: 'Status', status: 'Failure', reason: 'Forbidden', code: 403,
    message: 'secrets "tls" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets" in API group "" in the namespace "x"',
  }), {});
  t.equal(describeApiError('read Secret x/tls', forbidden),
    'read Secret x/tls: HTTP 403 Forbidden: secrets "tls" is forbidden: User "system:serviceaccount:x:y" cannot get resource "secrets" in API group "" in the namespace "x"');
  t.equal(describeApiError('read Secret x/tls', new ApiException(401, 'Unauthorized', undefined, {})), 'read Secret x/tls: HTTP 401 Unauthorized');
  t.equal(describeApiError('op', new ApiException(409, 'x', { reason: 'AlreadyExists' }, {})), 'op: HTTP 409 Conflict: AlreadyExists', 'the reason when the Status has no message');
  t.equal(describeApiError('op', new ApiException(500, 'x', 'plain text\nsecond line', {})), 'op: HTTP 500 Internal Server Error: plain text', "a text body's first line");
  t.equal(describeApiError('op', new ApiException(418, 'x', undefined, {})), 'op: HTTP 418', 'a status without a name');
  t.equal(describeApiError('op', new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') })),
    'op: no answer from the API server: connect ECONNREFUSED 127.0.0.1:6443');
  t.equal(describeApiError('op', new TypeError('fetch failed', { cause: Object.assign(new Error('x'), { code: 'ECONNRESET' }) }), 'https://10.96.0.1'),
    'op: no answer from the API server https://10.96.0.1: ECONNRESET', 'the server when known, the error code of the cause');
  t.notMatch(describeApiError('op', new Error('a\nb')), '\n');
  t.end();
});

void t.test("statusOf: an ApiException's code, a refused watch's statusCode, nothing for network errors", (t) => {
  t.equal(statusOf(new ApiException(404, 'x', undefined, {})), 404);
  t.equal(statusOf(Object.assign(new Error('watch refused'), { statusCode: 410 })), 410);
  t.equal(statusOf(Object.assign(new Error('refused'), { code: 'ECONNREFUSED' })), undefined);
  t.equal(statusOf(undefined), undefined);
  t.end();
});
