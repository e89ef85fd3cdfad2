import t from 'tap';
import { applyPatchStrict, decodePointerToken, encodePointerToken, JsonPatchError } from './jsonpatch.ts';

const pod = () => ({
  metadata: { name: 'p', labels: { app: 'prom' } },
  spec: { containers: [{ name: 'prometheus', image: 'prom/prometheus:v3.0.0', args: ['--a'] }] },
});

void t.test('add: missing parent fails (no parent auto-creation)', (t) => {
  t.throws(() => applyPatchStrict(pod(), [{ op: 'add', path: '/metadata/annotations/x', value: 'y' }]), {
    message: /op 0 \(add "\/metadata\/annotations\/x"\).*doc is missing path/,
  });
  t.throws(() => applyPatchStrict(pod(), [{ op: 'add', path: '/spec/volumes/-', value: { name: 'v' } }]), JsonPatchError);
  // traversing through a scalar is a missing path too
  t.throws(() => applyPatchStrict(pod(), [{ op: 'add', path: '/metadata/name/x', value: 1 }]), /doc is missing path/);
  // adding the whole map works
  const out = applyPatchStrict(pod(), [{ op: 'add', path: '/metadata/annotations', value: { x: 'y' } }]);
  t.same((out as { metadata: { annotations: unknown } }).metadata.annotations, { x: 'y' });
  t.end();
});

void t.test('the error names the op index and path', (t) => {
  const err = t.throws(() =>
    applyPatchStrict(pod(), [
      { op: 'add', path: '/metadata/labels/a', value: 'b' },
      { op: 'replace', path: '/spec/nodeName', value: 'n' },
    ]),
  );
  t.ok(err instanceof JsonPatchError);
  const e = err as JsonPatchError;
  t.equal(e.opIndex, 1);
  t.equal(e.op, 'replace');
  t.equal(e.path, '/spec/nodeName');
  t.match(e.message, /op 1 \(replace "\/spec\/nodeName"\)/);
  t.end();
});

void t.test('JSON Pointer escapes: ~1 is /, ~0 is ~, ~01 is ~1', (t) => {
  t.equal(decodePointerToken('thanos-injector~1status'), 'thanos-injector/status');
  t.equal(decodePointerToken('a~0b'), 'a~b');
  t.equal(decodePointerToken('~01'), '~1');
  t.equal(decodePointerToken('~10'), '/0');
  t.equal(encodePointerToken('a/b~c'), 'a~1b~0c');
  t.equal(decodePointerToken(encodePointerToken('~1/~0')), '~1/~0');

  const out = applyPatchStrict({ metadata: { annotations: {} } }, [
    { op: 'add', path: '/metadata/annotations/thanos-injector~1status', value: 'injected' },
    { op: 'add', path: '/metadata/annotations/a~0b', value: 'tilde' },
    { op: 'add', path: '/metadata/annotations/~01', value: 'literal' },
  ]);
  t.same(out, { metadata: { annotations: { 'thanos-injector/status': 'injected', 'a~b': 'tilde', '~1': 'literal' } } });
  t.end();
});

void t.test('- appends; indices insert', (t) => {
  const out = applyPatchStrict({ a: [1, 2] }, [
    { op: 'add', path: '/a/-', value: 3 },
    { op: 'add', path: '/a/0', value: 0 },
    { op: 'add', path: '/a/4', value: 4 }, // == length: allowed for add
  ]);
  t.same(out, { a: [0, 1, 2, 3, 4] });
  t.end();
});

void t.test('add on an existing object key replaces it', (t) => {
  const out = applyPatchStrict({ metadata: { labels: { app: 'x', keep: 'y' } } }, [
    { op: 'add', path: '/metadata/labels/app', value: 'z' },
  ]);
  t.same(out, { metadata: { labels: { app: 'z', keep: 'y' } } });
  // adding a whole existing map replaces the user's entries (the pitfall of section 6)
  const wiped = applyPatchStrict({ metadata: { labels: { app: 'x', keep: 'y' } } }, [
    { op: 'add', path: '/metadata/labels', value: { injected: 'true' } },
  ]);
  t.same(wiped, { metadata: { labels: { injected: 'true' } } });
  t.end();
});

void t.test('array bounds', (t) => {
  // add: index <= length
  t.throws(() => applyPatchStrict({ a: [1] }, [{ op: 'add', path: '/a/2', value: 0 }]), /invalid index/);
  // replace/remove/test: index < length
  t.throws(() => applyPatchStrict({ a: [1, 2] }, [{ op: 'replace', path: '/a/2', value: 0 }]), /invalid index/);
  t.throws(() => applyPatchStrict({ a: [1] }, [{ op: 'remove', path: '/a/1' }]), /invalid index/);
  t.throws(() => applyPatchStrict({ a: [] }, [{ op: 'remove', path: '/a/-' }]), /not a proper array index/);
  t.throws(() => applyPatchStrict({ a: [1] }, [{ op: 'add', path: '/a/x', value: 0 }]), /not a proper array index/);
  // copy/move destination bounds
  t.throws(() => applyPatchStrict({ a: [1] }, [{ op: 'copy', from: '/a/0', path: '/a/2' }]), /invalid index/);
  t.throws(() => applyPatchStrict({ a: [1, 2, 3, 4] }, [{ op: 'move', from: '/a/1', path: '/a/4' }]), /invalid index/);
  t.end();
});

void t.test('negative indices (evanphx v4 SupportNegativeIndices)', (t) => {
  // add: -1 appends, range [-(len+1), len]
  t.same(applyPatchStrict({ a: ['x', 'y'] }, [{ op: 'add', path: '/a/-1', value: 'z' }]), { a: ['x', 'y', 'z'] });
  t.same(applyPatchStrict({ a: ['x', 'y'] }, [{ op: 'add', path: '/a/-3', value: 'z' }]), { a: ['z', 'x', 'y'] });
  t.same(applyPatchStrict({ a: [] }, [{ op: 'add', path: '/a/-1', value: 'z' }]), { a: ['z'] });
  t.throws(() => applyPatchStrict({ a: ['x', 'y'] }, [{ op: 'add', path: '/a/-4', value: 'z' }]), /invalid index/);
  // remove / replace: range [-len, len)
  t.same(applyPatchStrict({ a: ['x', 'y', 'z'] }, [{ op: 'remove', path: '/a/-2' }]), { a: ['x', 'z'] });
  t.same(applyPatchStrict({ a: ['x', 'y'] }, [{ op: 'replace', path: '/a/-1', value: 'q' }]), { a: ['x', 'q'] });
  t.throws(() => applyPatchStrict({ a: [] }, [{ op: 'remove', path: '/a/-1' }]), /invalid index/);
  t.throws(() => applyPatchStrict({ a: ['x'] }, [{ op: 'remove', path: '/a/-2' }]), /invalid index/);
  // in the middle of a path
  t.same(applyPatchStrict({ a: [{ b: 1 }, { b: 2 }] }, [{ op: 'replace', path: '/a/-1/b', value: 3 }]), { a: [{ b: 1 }, { b: 3 }] });
  t.end();
});

void t.test('replace and remove need an existing target', (t) => {
  t.throws(() => applyPatchStrict({ a: {} }, [{ op: 'replace', path: '/a/b', value: 1 }]), /replace operation does not apply: doc is missing key/);
  t.throws(() => applyPatchStrict({ a: {} }, [{ op: 'remove', path: '/a/b' }]), /nonexistent key/);
  t.throws(() => applyPatchStrict({}, [{ op: 'remove', path: '/a/b' }]), /doc is missing path/);
  t.same(applyPatchStrict({ a: { b: 1, c: 2 } }, [{ op: 'remove', path: '/a/b' }]), { a: { c: 2 } });
  t.same(applyPatchStrict({ a: { b: null } }, [{ op: 'replace', path: '/a/b', value: 1 }]), { a: { b: 1 } });
  t.end();
});

void t.test('test op', (t) => {
  const doc = { baz: 'qux', foo: ['a', 2, { c: [1] }] };
  t.same(
    applyPatchStrict(doc, [
      { op: 'test', path: '/baz', value: 'qux' },
      { op: 'test', path: '/foo/1', value: 2 },
      { op: 'test', path: '/foo/2', value: { c: [1] } },
    ]),
    doc,
  );
  t.throws(() => applyPatchStrict(doc, [{ op: 'test', path: '/baz', value: 'bar' }]), /testing value \/baz failed/);
  t.throws(() => applyPatchStrict(doc, [{ op: 'test', path: '/foo/2', value: { c: [1, 2] } }]), /test failed/);
  // v4: a missing member equals null
  t.same(applyPatchStrict(doc, [{ op: 'test', path: '/nope', value: null }]), doc);
  t.throws(() => applyPatchStrict(doc, [{ op: 'test', path: '/nope', value: 42 }]), /test failed/);
  t.throws(() => applyPatchStrict({ foo: {} }, [{ op: 'test', path: '/foo', value: null }]), /test failed/);
  // one failing op fails the whole patch
  t.throws(() =>
    applyPatchStrict(doc, [
      { op: 'add', path: '/x', value: 1 },
      { op: 'test', path: '/baz', value: 'no' },
    ]),
  );
  t.end();
});

void t.test('move and copy', (t) => {
  t.same(
    applyPatchStrict({ foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } }, [
      { op: 'move', from: '/foo/waldo', path: '/qux/thud' },
    ]),
    { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } },
  );
  t.same(applyPatchStrict({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }]), {
    foo: ['all', 'cows', 'eat', 'grass'],
  });
  t.throws(() => applyPatchStrict({ a: { b: 1 } }, [{ op: 'move', from: '/a', path: '/a/c' }]), /missing path/);
  t.throws(() => applyPatchStrict({ a: {} }, [{ op: 'move', from: '/a/x', path: '/b' }]), /nonexistent key/);
  const copied = applyPatchStrict({ foo: ['bar'] }, [{ op: 'copy', from: '/foo', path: '/foo/0' }]);
  t.same(copied, { foo: [['bar'], 'bar'] });
  // the copy is deep: changing it does not change the source
  const deep = applyPatchStrict({ a: { x: [1] } }, [
    { op: 'copy', from: '/a', path: '/b' },
    { op: 'add', path: '/b/x/-', value: 2 },
  ]);
  t.same(deep, { a: { x: [1] }, b: { x: [1, 2] } });
  t.throws(() => applyPatchStrict({ a: 1 }, [{ op: 'copy', from: '/nope', path: '/b' }]), /nonexistent key/);
  t.end();
});

void t.test('malformed patches and ops throw', (t) => {
  t.throws(() => applyPatchStrict({}, { op: 'add' }), /must be a JSON array/);
  t.throws(() => applyPatchStrict({}, ['add']), /op 0 .*must be a JSON object/);
  t.throws(() => applyPatchStrict({}, [{ op: 'merge', path: '/a', value: 1 }]), /Unexpected kind: merge/);
  t.throws(() => applyPatchStrict({}, [{ path: '/a', value: 1 }]), /Unexpected kind: unknown/);
  t.throws(() => applyPatchStrict({}, [{ op: 'add', value: 1 }]), /missing path/);
  t.throws(() => applyPatchStrict({}, [{ op: 'add', path: 5, value: 1 }]), /path field must be a string/);
  t.throws(() => applyPatchStrict({}, [{ op: 'add', path: '/a' }]), /missing value/);
  t.throws(() => applyPatchStrict({}, [{ op: 'move', path: '/a' }]), /missing from/);
  t.throws(() => applyPatchStrict({}, [{ op: 'add', path: 'a', value: 1 }]), /must start with/);
  t.throws(() => applyPatchStrict({}, [{ op: 'add', path: '', value: 1 }]), /whole document/);
  t.throws(() => applyPatchStrict('scalar', []), /object or array/);
  // null is a legal value
  t.same(applyPatchStrict({}, [{ op: 'add', path: '/a', value: null }]), { a: null });
  // an empty patch is no change
  t.same(applyPatchStrict({ a: 1 }, []), { a: 1 });
  t.end();
});

void t.test('input document and ops are not mutated; output does not alias them', (t) => {
  const doc = pod();
  const before = JSON.stringify(doc);
  const value = { name: 'thanos-sidecar', image: 'quay.io/thanos/thanos:v0.37.2' };
  const ops = [
    { op: 'add', path: '/spec/containers/-', value },
    { op: 'add', path: '/spec/containers/0/args/-', value: '--b' },
    { op: 'replace', path: '/metadata/name', value: 'q' },
    { op: 'remove', path: '/metadata/labels/app' },
  ];
  const opsBefore = JSON.stringify(ops);
  const out = applyPatchStrict(doc, ops) as ReturnType<typeof pod>;
  t.equal(JSON.stringify(doc), before, 'document unchanged');
  t.equal(JSON.stringify(ops), opsBefore, 'ops unchanged');
  t.equal(out.spec.containers.length, 2);
  t.not(out.spec.containers[1], value, 'value copied, not aliased');
  t.same(out.spec.containers[0]?.args, ['--a', '--b']);
  // a failed patch leaves the input alone too
  t.throws(() => applyPatchStrict(doc, [{ op: 'add', path: '/metadata/labels/x', value: '1' }, { op: 'remove', path: '/nope' }]));
  t.equal(JSON.stringify(doc), before);
  t.end();
});

void t.test('__proto__ is an ordinary member name', (t) => {
  const out = applyPatchStrict({ a: {} }, [{ op: 'add', path: '/a/__proto__', value: { polluted: true } }]) as {
    a: Record<string, unknown>;
  };
  t.ok(Object.hasOwn(out.a, '__proto__'));
  t.equal(({} as Record<string, unknown>).polluted, undefined);
  t.end();
});
