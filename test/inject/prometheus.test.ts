// Reading the Prometheus container: which container it is (isPrometheusImage, findPrometheus) and
// what its flags say (readPrometheus: TSDB path, port, route prefix, block flags and their sites,
// flags in command, shell scripts).
import t from 'tap';
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';
import {
  findPrometheus,
  imageDefaultArgs,
  isPrometheusImage,
  MAX_BLOCK_FLAG,
  MIN_BLOCK_FLAG,
  prometheusMajor,
  readPrometheus,
  type PrometheusView,
} from '../../src/inject/prometheus.ts';

/** A spec with one container named `prometheus` running the official image, plus `fields`. */
function specWith(fields: Partial<V1Container>): V1PodSpec {
  return { containers: [{ name: 'prometheus', image: 'quay.io/prometheus/prometheus:v3.5.0', ...fields }] };
}

function read(fields: Partial<V1Container>): PrometheusView {
  return readPrometheus(specWith(fields), 0);
}

void t.test('isPrometheusImage: Prometheus server images', (t) => {
  for (const image of [
    'prom/prometheus',
    'prom/prometheus:latest',
    'prom/prometheus:v2.53.0',
    'quay.io/prometheus/prometheus:v3.5.0',
    'docker.io/prom/prometheus',
    'docker.io/prom/prometheus:v3.5.0',
    'registry:5000/prometheus@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    'registry:5000/prometheus:v3.5.0@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    'registry:5000/prometheus',
    'prometheus',
    'prometheus:v3.5.0',
    'my.registry.example.com/mirror/prom/prometheus:v3.5.0',
  ]) {
    t.equal(isPrometheusImage(image), true, image);
  }
  t.end();
});

void t.test('isPrometheusImage: other images', (t) => {
  for (const image of [
    'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2',
    'prometheus-config-reloader',
    'prom/node-exporter',
    'prom/node-exporter:v1.8.2',
    'quay.io/prometheus/node-exporter:v1.8.2',
    'quay.io/prometheus-operator/prometheus-operator:v0.77.2',
    'prometheus-operator',
    'bitnami/prometheus-exporter',
    'prom/pushgateway',
    'prom/alertmanager',
    'registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0',
    'prometheus/prometheus-mixin',
    'quay.io/thanos/thanos:v0.42.5',
    'prometheus:5000/thanos',
    'nginx:1.27',
    '',
    undefined,
  ]) {
    t.equal(isPrometheusImage(image), false, String(image));
  }
  t.end();
});

void t.test('findPrometheus', (t) => {
  const spec: V1PodSpec = {
    containers: [
      { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2' },
      { name: 'server', image: 'prom/prometheus:v3.5.0' },
      { name: 'prometheus', image: 'example.com/custom-build:1' },
      { name: 'extra', image: 'quay.io/prometheus/prometheus:v3.5.0' },
    ],
  };
  t.equal(findPrometheus(spec, 'extra'), 3, 'the annotation names the container, whatever the others');
  t.equal(findPrometheus(spec, 'reloader'), 0, 'the annotation wins even over a non-Prometheus image');
  t.equal(findPrometheus(spec, 'missing'), undefined, 'an annotation naming no container finds nothing (no fallback)');
  t.equal(findPrometheus(spec, undefined), 2, 'without the annotation, the container named prometheus wins over images');

  const byImage: V1PodSpec = {
    containers: [
      { name: 'reloader', image: 'quay.io/prometheus-operator/prometheus-config-reloader:v0.77.2' },
      { name: 'exporter', image: 'prom/node-exporter' },
      { name: 'server', image: 'prom/prometheus:v3.5.0' },
      { name: 'server2', image: 'quay.io/prometheus/prometheus:v3.5.0' },
    ],
  };
  t.equal(findPrometheus(byImage, undefined), 2, 'else the first container with a Prometheus image');

  const none: V1PodSpec = {
    containers: [
      { name: 'app', image: 'nginx' },
      { name: 'exporter', image: 'prom/node-exporter' },
    ],
    initContainers: [{ name: 'prometheus', image: 'prom/prometheus' }],
  };
  t.equal(findPrometheus(none, undefined), undefined, 'no Prometheus among the regular containers (init containers do not count)');
  t.end();
});

void t.test('readPrometheus: TSDB path', (t) => {
  t.equal(read({}).tsdbPath, '/prometheus', 'no command, no args: the image default /prometheus');
  t.equal(read({}).usesImageDefaults, true);
  t.equal(read({ args: ['--config.file=/etc/prometheus/prometheus.yml'] }).tsdbPath, '/prometheus/data', 'args without the flag: data/ under the image working dir');
  t.equal(read({ args: ['--config.file=/etc/prometheus/prometheus.yml'] }).usesImageDefaults, false);
  t.equal(read({ command: ['/bin/prometheus'] }).tsdbPath, '/prometheus/data', 'command without the flag: data/ under the working dir');
  t.equal(read({ workingDir: '/opt/prom', args: ['--web.listen-address=:9090'] }).tsdbPath, '/opt/prom/data', 'default data/ follows workingDir');

  t.equal(read({ args: ['--storage.tsdb.path=/var/lib/prometheus'] }).tsdbPath, '/var/lib/prometheus', '--flag=value');
  t.equal(read({ args: ['--storage.tsdb.path', '/var/lib/prometheus'] }).tsdbPath, '/var/lib/prometheus', '--flag value');
  t.equal(read({ args: ['--storage.tsdb.path=/var/lib/prometheus/'] }).tsdbPath, '/var/lib/prometheus', 'trailing slash removed');
  t.equal(read({ args: ['--storage.tsdb.path', '/data//tsdb///'] }).tsdbPath, '/data/tsdb', 'normalised');
  t.equal(read({ args: ['--storage.tsdb.path=tsdb'] }).tsdbPath, '/prometheus/tsdb', 'relative: against the image working dir /prometheus');
  t.equal(read({ workingDir: '/opt/prom', args: ['--storage.tsdb.path=tsdb/'] }).tsdbPath, '/opt/prom/tsdb', 'relative: against workingDir, trailing slash removed');
  t.equal(read({ workingDir: '/opt/prom/', args: ['--storage.tsdb.path', './a/../b'] }).tsdbPath, '/opt/prom/b', 'relative with . and ..');
  t.equal(read({ workingDir: '/opt/prom', args: ['--storage.tsdb.path=/abs'] }).tsdbPath, '/abs', 'absolute path ignores workingDir');
  t.equal(
    read({ args: ['--storage.tsdb.path=/first', '--storage.tsdb.path=/second'] }).tsdbPath,
    '/first',
    'a repeated flag: the first one is reported',
  );
  t.end();
});

void t.test('readPrometheus: port from --web.listen-address', (t) => {
  t.equal(read({}).port, 9090, 'default 9090');
  t.equal(read({ args: ['--web.listen-address=:9091'] }).port, 9091, ':9091');
  t.equal(read({ args: ['--web.listen-address=0.0.0.0:9092'] }).port, 9092, '0.0.0.0:9092');
  t.equal(read({ args: ['--web.listen-address=[::]:9093'] }).port, 9093, '[::]:9093');
  t.equal(read({ args: ['--web.listen-address', '127.0.0.1:9094'] }).port, 9094, 'separate form');
  t.equal(read({ command: ['/bin/prometheus', '--web.listen-address=:9095'] }).port, 9095, 'in command');
  t.equal(read({ args: ['--web.listen-address=localhost'] }).port, 9090, 'no port: default');
  t.equal(read({ args: ['--web.listen-address=:0'] }).port, 9090, 'port 0: default');
  t.equal(read({ args: ['--web.listen-address=:70000'] }).port, 9090, 'out of range: default');
  t.end();
});

void t.test('readPrometheus: route prefix', (t) => {
  t.equal(read({}).routePrefix, '', 'none');
  t.equal(read({ args: ['--web.route-prefix=/prom'] }).routePrefix, '/prom');
  t.equal(read({ args: ['--web.route-prefix', '/prom/'] }).routePrefix, '/prom', 'trailing slash removed');
  t.equal(read({ args: ['--web.route-prefix=prom'] }).routePrefix, '/prom', 'leading slash added');
  t.equal(read({ args: ['--web.route-prefix=/'] }).routePrefix, '', '/ is no prefix');
  t.equal(read({ args: ['--web.external-url=https://example.com/prometheus/'] }).routePrefix, '/prometheus', 'path of the external URL');
  t.equal(read({ args: ['--web.external-url', 'http://example.com:9090/a/b'] }).routePrefix, '/a/b', 'external URL, separate form');
  t.equal(read({ args: ['--web.external-url=https://example.com'] }).routePrefix, '', 'external URL without a path');
  t.equal(read({ args: ['--web.external-url=https://example.com/'] }).routePrefix, '', 'external URL with path /');
  t.equal(
    read({ args: ['--web.external-url=https://example.com/ext/', '--web.route-prefix=/route'] }).routePrefix,
    '/route',
    'route prefix wins over the external URL path',
  );
  t.equal(
    read({ args: ['--web.route-prefix=/', '--web.external-url=https://example.com/ext/'] }).routePrefix,
    '',
    'route prefix / wins over the external URL path',
  );
  t.end();
});

void t.test('readPrometheus: a relative --web.external-url sets the route prefix too', (t) => {
  // Prometheus parses the external URL with Go's url.Parse, which accepts a bare path, and the
  // route prefix defaults to its path: `--web.external-url=/prometheus/` serves under /prometheus.
  t.equal(read({ args: ['--web.external-url=/prometheus/'] }).routePrefix, '/prometheus', 'a path-only external URL gives /prometheus');
  t.end();
});

void t.test('readPrometheus: block flags and their sites', (t) => {
  const equals = read({ args: ['--config.file=/etc/p.yml', `--${MIN_BLOCK_FLAG}=30m`, `--${MAX_BLOCK_FLAG}=6h`] });
  t.same(equals.minBlock, { value: '30m', site: { list: 'args', index: 1, form: 'equals' } }, 'min, equals form');
  t.same(equals.maxBlock, { value: '6h', site: { list: 'args', index: 2, form: 'equals' } }, 'max, equals form');

  const separate = read({ args: [`--${MIN_BLOCK_FLAG}`, '30m', '--web.enable-lifecycle', `--${MAX_BLOCK_FLAG}`, '2h'] });
  t.same(separate.minBlock, { value: '30m', site: { list: 'args', index: 1, form: 'separate' } }, 'separate form: the site is the value');
  t.same(separate.maxBlock, { value: '2h', site: { list: 'args', index: 4, form: 'separate' } }, 'a bare boolean flag (--web.enable-lifecycle) does not eat the next flag');

  const missing = read({ args: ['--storage.tsdb.path=/data'] });
  t.equal(missing.minBlock, undefined, 'missing min');
  t.equal(missing.maxBlock, undefined, 'missing max');

  const dangling = read({ args: [`--${MIN_BLOCK_FLAG}`, `--${MAX_BLOCK_FLAG}=2h`] });
  t.equal(dangling.minBlock, undefined, 'a separate flag without a value is not read');
  t.same(dangling.maxBlock, { value: '2h', site: { list: 'args', index: 1, form: 'equals' } }, 'and the next flag still is');

  const inCommand = read({ command: ['/bin/prometheus', `--${MIN_BLOCK_FLAG}=1h`, `--${MAX_BLOCK_FLAG}`, '3h'] });
  t.same(inCommand.minBlock, { value: '1h', site: { list: 'command', index: 1, form: 'equals' } }, 'in command, equals');
  t.same(inCommand.maxBlock, { value: '3h', site: { list: 'command', index: 3, form: 'separate' } }, 'in command, separate');

  const across = read({ command: ['/bin/prometheus', `--${MAX_BLOCK_FLAG}`], args: ['4h', `--${MIN_BLOCK_FLAG}=4h`] });
  t.same(across.maxBlock, { value: '4h', site: { list: 'args', index: 0, form: 'separate' } }, 'flag at the end of command, value in args');
  t.same(across.minBlock, { value: '4h', site: { list: 'args', index: 1, form: 'equals' } });

  const repeated = read({ args: [`--${MIN_BLOCK_FLAG}=1h`, `--${MIN_BLOCK_FLAG}=2h`] });
  t.same(repeated.minBlock, { value: '1h', site: { list: 'args', index: 0, form: 'equals' } }, 'repeated: the first');
  t.end();
});

void t.test('readPrometheus: other flags', (t) => {
  const view = read({
    command: ['/bin/prometheus', '--config.file', '/etc/prom/config.yml'],
    args: ['--storage.tsdb.retention.time=7d', '--web.config.file=/etc/web.yml', '--web.enable-lifecycle'],
  });
  t.equal(view.configFile, '/etc/prom/config.yml');
  t.equal(view.retention, '7d');
  t.equal(view.webConfigFile, '/etc/web.yml');
  t.equal(view.shellScript, false);
  t.equal(view.usesImageDefaults, false);
  t.equal(view.index, 0);
  t.equal(view.container.name, 'prometheus');

  t.equal(read({ args: ['--storage.tsdb.retention=30d'] }).retention, '30d', 'the old retention flag');
  t.equal(read({}).configFile, '/etc/prometheus/prometheus.yml', 'image default config file');
  t.equal(read({ args: ['--storage.tsdb.path=/x'] }).configFile, 'prometheus.yml', 'Prometheus default config file when args are set');

  const second = readPrometheus(
    { containers: [{ name: 'app', image: 'nginx' }, { name: 'server', image: 'prom/prometheus', args: ['--web.listen-address=:9999'] }] },
    1,
  );
  t.equal(second.index, 1);
  t.equal(second.container.name, 'server');
  t.equal(second.port, 9999);
  t.end();
});

void t.test('readPrometheus: shell scripts', (t) => {
  const script = read({
    command: ['/bin/sh', '-c'],
    args: ['exec /bin/prometheus --storage.tsdb.path=/data --web.listen-address=:9095 --storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration 2h'],
  });
  t.equal(script.shellScript, true, 'sh -c in command, script in args');
  t.equal(script.tsdbPath, '/data', 'flags are read from the script');
  t.equal(script.port, 9095);
  t.same(script.minBlock, { value: '2h', site: undefined }, 'no site: the script cannot be edited in place');
  t.same(script.maxBlock, { value: '2h', site: undefined }, 'separate form inside the script');

  const inCommand = read({ command: ['bash', '-c', "exec prometheus --storage.tsdb.path='/var/prom' --web.route-prefix=/p"] });
  t.equal(inCommand.shellScript, true, 'bash -c with the script in command');
  t.equal(inCommand.routePrefix, '/p');

  const argsOnly = read({ command: ['/usr/bin/dash'], args: ['-c', 'prometheus --storage.tsdb.path /srv/tsdb'] });
  t.equal(argsOnly.shellScript, true, '-c and the script in args');
  t.equal(argsOnly.tsdbPath, '/srv/tsdb');

  t.equal(read({ command: ['/bin/sh', '/entrypoint.sh'] }).shellScript, false, 'a script file, no -c: not a script string');
  t.equal(read({ command: ['/bin/prometheus'], args: ['-c', 'x'] }).shellScript, false, 'not a shell');
  t.end();
});

void t.test('readPrometheus: quoted values inside a shell script', (t) => {
  // `sh -c 'prometheus --storage.tsdb.path="/data"'`: the shell removes the quotes, Prometheus sees /data.
  const view = read({ command: ['/bin/sh', '-c', 'exec /bin/prometheus --storage.tsdb.path="/data" --storage.tsdb.min-block-duration=2h --storage.tsdb.max-block-duration=2h'] });
  t.equal(view.shellScript, true);
  t.equal(view.tsdbPath, '/data', 'the quotes around the value are not part of the path');
  t.end();
});

void t.test('readPrometheus: shell with combined options such as sh -ec', (t) => {
  // `sh -ec "script"` (set -e, then -c) is as much a shell script as `sh -c`: flags appended to
  // args after it become the script's positional parameters and never reach Prometheus.
  const view = read({ command: ['/bin/sh', '-ec'], args: ['exec /bin/prometheus --storage.tsdb.path=/data'] });
  t.equal(view.shellScript, true, 'detected as a shell script');
  t.equal(view.tsdbPath, '/data', 'flags read from the script');
  t.end();
});

void t.test("prometheusMajor: the release line from the image's tag, undefined when the tag does not tell", (t) => {
  const cases: [string | undefined, number | undefined][] = [
    ['quay.io/prometheus/prometheus:v2.54.1', 2],
    ['prom/prometheus:v3.5.0', 3],
    ['prom/prometheus:2.42.0', 2],
    ['registry.example.com:5000/prom/prometheus:v3.16.0-rc.0', 3],
    ['prom/prometheus:v2.54.1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 2],
    ['prom/prometheus@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', undefined],
    ['prom/prometheus:latest', undefined],
    ['prom/prometheus:main', undefined],
    ['registry.example.com:5000/prom/prometheus', undefined],
    ['prom/prometheus', undefined],
    [undefined, undefined],
  ];
  for (const [image, major] of cases) t.equal(prometheusMajor(image), major, String(image));
  t.end();
});

void t.test("imageDefaultArgs: the official image's CMD of that line (2.x adds the console flags 3.0 removed)", (t) => {
  const base = ['--config.file=/etc/prometheus/prometheus.yml', '--storage.tsdb.path=/prometheus'];
  t.same(imageDefaultArgs(3), base);
  t.same(imageDefaultArgs(2), [...base, '--web.console.libraries=/usr/share/prometheus/console_libraries', '--web.console.templates=/usr/share/prometheus/consoles']);
  t.same(imageDefaultArgs(undefined), base, "3.x's when the version cannot be told");
  t.end();
});
