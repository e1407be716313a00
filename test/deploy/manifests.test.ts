/**
 * The deployment manifests (deploy/kubernetes, deploy/openshift): every YAML file parses; every
 * kustomization refers to files that exist; each overlay (rendered by a small kustomize subset, and by
 * `kubectl kustomize` too when kubectl is installed) and the OpenShift Template (processed as
 * `oc process` would) give a Deployment whose config file passes the app's own validation and whose
 * probes, Service, ServiceMonitor, PodDisruptionBudget and HPA fit that configuration.
 */
import test, { type ExecutionContext } from 'ava';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { configKeyForEnv, describeConfigKeys, envAliases, type MirrorConfig } from '../../src/app/config/index.js';
import { Mirror } from '../../src/app/mirror.js';
import {
  DEPLOY,
  KUSTOMIZE,
  OVERLAYS,
  ROOT,
  containerConfig,
  find,
  isObject,
  kubectlKustomize,
  kubectlKustomizeAvailable,
  kustomizationFile,
  mirrorContainer,
  parseYaml,
  podSpec,
  processTemplate,
  quantity,
  readKustomization,
  readTemplate,
  readYaml,
  referencedParameters,
  referencedPaths,
  renderKustomization,
  yamlFiles,
  type Container,
  type Json,
  type K8sObject,
} from './manifests.js';

/** Values the tests put in the Secret `github-mirror`. */
const SECRETS = {
  'cache-secret': 'c'.repeat(64),
  'redis-password': 'redis-password-for-tests',
  'redis-sentinel-password': 'sentinel-password-for-tests',
  'aws-access-key-id': 'AKIAEXAMPLEEXAMPLE00',
  'aws-secret-access-key': 'secret-access-key-for-tests',
} satisfies Record<string, string>;

const IMAGE = 'registry.example.com/github-mirror:0.1.0';
const MiB = 1024 ** 2;

interface Expectation {
  backend: 'memory' | 'redis';
  hpa: boolean;
  image?: string;
  /** The Secret is created outside the manifests (kustomize) or is one of them (Template). */
  secretInManifests: boolean;
  /** Values of the Secret's keys (default SECRETS). */
  secrets?: Record<string, string>;
  check?: (t: ExecutionContext, config: MirrorConfig) => void;
}

function labelsMatch(selector: unknown, labels: unknown): boolean {
  if (!isObject(selector) || !isObject(labels) || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

function portOf(container: Container, port: unknown): number | undefined {
  if (typeof port === 'number') return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

const ALIAS_NAMES = new Set([...envAliases.flatMap((alias) => alias.aliases), 'REDIS_PASSWORD']);
const SENSITIVE_ENV = new Map(describeConfigKeys().filter((key) => key.sensitive).map((key) => [key.env, key]));

/** Everything a rendered set of objects must satisfy. */
function checkRendered(t: ExecutionContext, objects: K8sObject[], expected: Expectation): MirrorConfig {
  const deployments = find(objects, 'Deployment');
  t.is(deployments.length, 1, 'one Deployment');
  const deployment = deployments[0] as K8sObject;
  const spec = deployment.spec as Json;
  const pod = podSpec(deployment);
  const podLabels = (spec.template as Json).metadata as Json;
  const container = mirrorContainer(deployment);

  // Availability.
  t.is(spec.replicas, 3, '3 replicas');
  const strategy = spec.strategy as Json;
  t.is(strategy.type, 'RollingUpdate');
  t.true([0, '0', '0%'].includes((strategy.rollingUpdate as Json).maxUnavailable as string), 'rolling update with maxUnavailable 0');
  t.true(labelsMatch((spec.selector as Json).matchLabels, podLabels.labels), 'selector matches the pod labels');
  const spread = (pod.topologySpreadConstraints ?? []) as Json[];
  for (const key of ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']) {
    const constraint = spread.find((c) => c.topologyKey === key);
    t.truthy(constraint, `spread across ${key}`);
    t.true(labelsMatch((constraint?.labelSelector as Json | undefined)?.matchLabels, podLabels.labels), `${key} spread selects the pods`);
  }
  t.is(spread.find((c) => c.topologyKey === 'kubernetes.io/hostname')?.whenUnsatisfiable, 'DoNotSchedule', 'never two replicas on one node when avoidable');

  // Kubernetes service links (MIRROR_PORT=tcp://...) would break the configuration.
  t.is(pod.enableServiceLinks, false, 'enableServiceLinks: false');

  // Security.
  t.is((pod.securityContext as Json | undefined)?.runAsNonRoot, true, 'runAsNonRoot');
  const containerSecurity = (container.securityContext ?? {}) as Json;
  t.is(containerSecurity.allowPrivilegeEscalation, false);
  t.is(containerSecurity.readOnlyRootFilesystem, true);
  t.deepEqual((containerSecurity.capabilities as Json | undefined)?.drop, ['ALL']);
  if (expected.image !== undefined) t.is(container.image, expected.image);

  // Environment: only names the app knows, secrets from the Secret.
  for (const variable of container.env ?? []) {
    if (variable.name.startsWith('MIRROR_')) {
      t.true(variable.name === 'MIRROR_CONFIG' || configKeyForEnv(variable.name) !== undefined, `${variable.name} is a configuration variable`);
    }
    t.false(ALIAS_NAMES.has(variable.name), `${variable.name}: use the MIRROR_ name, not the Python mirror's alias`);
    if (SENSITIVE_ENV.has(variable.name)) {
      const ref = variable.valueFrom?.secretKeyRef;
      if (ref !== undefined) {
        t.is(ref.name, 'github-mirror', `${variable.name} comes from the Secret github-mirror`);
      } else {
        // Only URLs may be given inline, and then without credentials.
        t.regex(variable.name, /_URL$/, `${variable.name} is secret: take it from the Secret`);
        t.false(/\/\/[^/]*@/.test(variable.value ?? ''), `${variable.name} holds no credentials inline`);
      }
    }
  }
  const cacheSecret = container.env?.find((e) => e.name === 'MIRROR_CACHE_SECRET');
  t.truthy(cacheSecret?.valueFrom?.secretKeyRef, 'MIRROR_CACHE_SECRET comes from a Secret');
  t.not(cacheSecret?.valueFrom?.secretKeyRef?.optional, true, 'the cache secret is not optional');
  const requiredKeys = (container.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef && e.valueFrom.secretKeyRef.optional !== true ? [e.valueFrom.secretKeyRef.key] : []));
  const allKeys = (container.env ?? []).flatMap((e) => (e.valueFrom?.secretKeyRef ? [e.valueFrom.secretKeyRef.key] : []));
  if (expected.secretInManifests) {
    const [secret] = find(objects, 'Secret', 'github-mirror');
    t.truthy(secret, 'the Secret is part of the manifests');
    const keys = Object.keys({ ...(secret?.stringData as Json | undefined), ...(secret?.data as Json | undefined) });
    for (const key of allKeys) t.true(keys.includes(key), `the Secret has ${key}`);
  } else {
    t.is(find(objects, 'Secret').length, 0, 'no Secret with real values in the manifests');
    const [example] = readYaml(join(KUSTOMIZE, 'secret.example.yaml')) as Json[];
    const keys = Object.keys((example?.stringData ?? {}));
    for (const key of requiredKeys) t.true(keys.includes(key), `secret.example.yaml shows the required key ${key}`);
  }

  // The config file from the ConfigMap passes the app's own validation, in production.
  const secrets: Record<string, string> = expected.secrets ?? SECRETS;
  const resolved = containerConfig(objects, deployment, secrets);
  const { config } = resolved;
  t.is(resolved.nodeEnv, 'production');
  t.is(config.cache.backend, expected.backend);
  if (expected.backend === 'redis') {
    t.throws(() => containerConfig(objects, deployment, secrets, { MIRROR_CACHE_SECRET: undefined }), { message: /cache\.secret/ }, 'without the Secret the redis deployment would not start');
  }

  // Ports and probes match the configuration.
  const http = container.ports?.find((p) => p.name === 'http');
  t.is(http?.containerPort, config.server.port, 'container port = server.port');
  const scheme = config.server.tls.cert !== '' ? 'HTTPS' : 'HTTP';
  for (const [name, path] of [
    ['livenessProbe', '/healthz'],
    ['readinessProbe', '/readyz'],
  ] as const) {
    const probe = container[name] as Json | undefined;
    const get = probe?.httpGet as Json | undefined;
    t.is(get?.path, path, `${name} path`);
    t.is(portOf(container, get?.port), config.server.port, `${name} port = server.port (${config.server.port})`);
    t.is(get?.scheme ?? 'HTTP', scheme, `${name} scheme`);
  }

  // Resources: requests and limits, with room for the memory cache.
  const resources = container.resources as { requests?: Json; limits?: Json } | undefined;
  for (const kind of ['requests', 'limits'] as const) {
    for (const resource of ['cpu', 'memory']) t.truthy(resources?.[kind]?.[resource], `${kind}.${resource}`);
  }
  const memoryLimit = quantity(resources?.limits?.memory);
  t.true(quantity(resources?.requests?.memory) <= memoryLimit, 'memory request ≤ limit');
  t.true(quantity(resources?.requests?.cpu) <= quantity(resources?.limits?.cpu), 'cpu request ≤ limit');
  t.true(
    memoryLimit >= 1.5 * config.cache.memory.maxBytes + 256 * MiB,
    `memory limit ${memoryLimit / MiB} MiB holds cache.memory.maxBytes (${config.cache.memory.maxBytes / MiB} MiB) ×1.5 + 256 MiB`,
  );

  // Shutdown: preStop sleep + shutdownGraceMs fit in the termination grace period.
  const preStop = ((container.lifecycle as Json | undefined)?.preStop as Json | undefined)?.exec as { command?: string[] } | undefined;
  const sleepSeconds = preStop?.command?.[0] === 'sleep' ? Number(preStop.command[1]) : 0;
  t.true(
    Number(pod.terminationGracePeriodSeconds) >= sleepSeconds + config.server.shutdownGraceMs / 1000 + 5,
    'terminationGracePeriodSeconds ≥ preStop + server.shutdownGraceMs + 5 s',
  );

  // Volumes: every mount has a volume; the snapshot directory is writable.
  const volumes = (pod.volumes ?? []) as Array<Json & { name: string }>;
  for (const mount of container.volumeMounts ?? []) t.truthy(volumes.find((v) => v.name === mount.name), `volume ${mount.name} exists`);
  if (config.snapshot.store === 'file') {
    const mount = container.volumeMounts?.find((m) => config.snapshot.dir === m.mountPath || config.snapshot.dir.startsWith(`${m.mountPath}/`));
    t.truthy(mount, `snapshot.dir ${config.snapshot.dir} is on a volume (the root filesystem is read-only)`);
    t.not(mount?.readOnly, true, 'the snapshot volume is writable');
  }
  t.truthy(container.volumeMounts?.find((m) => m.mountPath === '/tmp' && m.readOnly !== true), 'a writable /tmp');

  // Service, ServiceMonitor, PodDisruptionBudget, HPA.
  const [service] = find(objects, 'Service', 'github-mirror');
  t.truthy(service, 'Service github-mirror');
  const serviceSpec = (service?.spec ?? {}) as Json;
  t.true(labelsMatch(serviceSpec.selector, podLabels.labels), 'Service selects the pods');
  const servicePorts = (serviceSpec.ports ?? []) as Json[];
  t.true(servicePorts.length > 0);
  for (const port of servicePorts) t.is(portOf(container, port.targetPort), config.server.port, `Service port ${String(port.name)} reaches server.port`);

  const [monitor] = find(objects, 'ServiceMonitor');
  t.truthy(monitor, 'a ServiceMonitor');
  const monitorSpec = (monitor?.spec ?? {}) as Json;
  t.true(labelsMatch((monitorSpec.selector as Json | undefined)?.matchLabels, service?.metadata.labels), 'ServiceMonitor selects the Service');
  const endpoints = (monitorSpec.endpoints ?? []) as Json[];
  t.true(endpoints.length > 0);
  for (const endpoint of endpoints) {
    t.true(servicePorts.some((p) => p.name === endpoint.port), `ServiceMonitor port ${String(endpoint.port)} is a Service port`);
    t.is(endpoint.path, '/metrics');
    t.is(endpoint.scheme ?? 'http', scheme.toLowerCase());
  }

  const [pdb] = find(objects, 'PodDisruptionBudget');
  t.truthy(pdb, 'a PodDisruptionBudget');
  const pdbSpec = (pdb?.spec ?? {}) as Json;
  t.true(labelsMatch((pdbSpec.selector as Json | undefined)?.matchLabels, podLabels.labels), 'PDB selects the pods');
  if (pdbSpec.maxUnavailable !== undefined) t.is(pdbSpec.maxUnavailable, 1);
  else t.true(Number(pdbSpec.minAvailable) < Number(spec.replicas), 'PDB lets one pod go');

  const hpas = find(objects, 'HorizontalPodAutoscaler');
  if (expected.hpa) {
    t.is(hpas.length, 1, 'an HPA');
    const hpaSpec = (hpas[0]?.spec ?? {}) as Json;
    t.deepEqual(hpaSpec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    t.is(hpaSpec.minReplicas, spec.replicas, 'HPA minimum = replicas');
    t.true(Number(hpaSpec.maxReplicas) > Number(hpaSpec.minReplicas));
  } else {
    t.is(hpas.length, 0, 'no HPA (each replica would build its own cache)');
  }

  expected.check?.(t, config);
  return config;
}

/** Starts the mirror with the rendered configuration (memory cache, loopback, no upstream) and asks its probe paths. */
async function probePathsAnswer(t: ExecutionContext, objects: K8sObject[], config: MirrorConfig): Promise<void> {
  const container = mirrorContainer(find(objects, 'Deployment')[0] as K8sObject);
  const local: MirrorConfig = structuredClone(config);
  local.server.port = 0;
  local.server.host = '127.0.0.1';
  local.server.tls = { cert: '', key: '' };
  local.upstream.url = 'http://127.0.0.1:9';
  local.cache.backend = 'memory';
  local.snapshot.store = 'none';
  local.log.level = 'silent';
  const mirror = new Mirror(local);
  try {
    const base = await mirror.start();
    for (const name of ['livenessProbe', 'readinessProbe'] as const) {
      const path = ((container[name] as Json).httpGet as Json).path as string;
      const response = await fetch(`${base}${path}`);
      await response.body?.cancel();
      t.is(response.status, 200, `${name} ${path} answers 200`);
    }
  } finally {
    await mirror.stop();
  }
}

function overlayExpectation(overlay: (typeof OVERLAYS)[number]): Expectation {
  switch (overlay) {
    case 'memory':
      return { backend: 'memory', hpa: false, image: IMAGE, secretInManifests: false };
    case 'redis':
      return {
        backend: 'redis',
        hpa: true,
        image: IMAGE,
        secretInManifests: false,
        check: (t, config) => {
          t.regex(config.cache.redis.url, /^rediss:\/\//, 'TLS to the external Redis');
          t.not(config.cache.redis.readerUrl, '', 'a reader endpoint');
          t.is(config.cache.redis.password, SECRETS['redis-password'], 'the Redis password comes from the Secret');
        },
      };
    case 'redis-sentinel':
      return {
        backend: 'redis',
        hpa: true,
        image: IMAGE,
        secretInManifests: false,
        check: (t, config) => {
          t.true(config.cache.redis.sentinels.length >= 3, 'three Sentinels');
          t.not(config.cache.redis.sentinelName, '');
          t.is(config.cache.redis.sentinelPassword, SECRETS['redis-sentinel-password']);
        },
      };
  }
}

// ---------------------------------------------------------------------------------------------

test('every YAML file under deploy/ parses (strict, no duplicate keys, same under YAML 1.1 and 1.2)', (t) => {
  const files = yamlFiles(DEPLOY);
  t.true(files.length >= 14, `found ${files.length} YAML files`);
  const problems = files.flatMap((file) => parseYaml(readFileSync(file, 'utf8'), relative(ROOT, file)).problems);
  t.deepEqual(problems, []);
});

test('every manifest in deploy/kubernetes and deploy/openshift is a Kubernetes object or a kustomization', (t) => {
  for (const file of [...yamlFiles(KUSTOMIZE), ...yamlFiles(join(DEPLOY, 'openshift'))]) {
    for (const doc of readYaml(file)) {
      t.true(isObject(doc), relative(ROOT, file));
      const object = doc as Json;
      t.is(typeof object.apiVersion, 'string', `${relative(ROOT, file)}: apiVersion`);
      t.is(typeof object.kind, 'string', `${relative(ROOT, file)}: kind`);
      if (object.kind !== 'Kustomization' && object.kind !== 'Component') {
        t.is(typeof (object.metadata as Json | undefined)?.name, 'string', `${relative(ROOT, file)}: metadata.name`);
      }
    }
  }
});

test('every kustomization refers only to files and directories that exist', (t) => {
  const dirs = yamlFiles(KUSTOMIZE)
    .filter((file) => /\/kustomization\.ya?ml$/.test(file))
    .map((file) => file.replace(/\/kustomization\.ya?ml$/, ''));
  t.true(dirs.length >= 5, 'base, hpa component and three overlays');
  for (const dir of dirs) {
    const k = readKustomization(dir);
    const paths = referencedPaths(dir, k);
    t.true(paths.length > 0, relative(ROOT, dir));
    for (const path of paths) {
      t.true(existsSync(path), `${relative(ROOT, dir)} refers to ${relative(ROOT, path)}, which does not exist`);
      if (existsSync(path) && statSync(path).isDirectory()) {
        t.truthy(kustomizationFile(path), `${relative(ROOT, path)} (a directory resource) has a kustomization.yaml`);
      }
    }
    for (const component of k.components ?? []) t.is(readKustomization(join(dir, component)).kind, 'Component');
  }
  for (const overlay of OVERLAYS) t.truthy(kustomizationFile(join(KUSTOMIZE, 'overlays', overlay)), `overlay ${overlay}`);
});

test('base: renders, validates and fits its configuration', async (t) => {
  const objects = renderKustomization(join(KUSTOMIZE, 'base'));
  const config = checkRendered(t, objects, { backend: 'memory', hpa: false, image: 'github-mirror', secretInManifests: false });
  t.is(config.server.port, 8080, 'the documented port');
  await probePathsAnswer(t, objects, config);
});

for (const overlay of OVERLAYS) {
  test(`overlay ${overlay}: renders, validates and fits its configuration`, async (t) => {
    const objects = renderKustomization(join(KUSTOMIZE, 'overlays', overlay));
    const config = checkRendered(t, objects, overlayExpectation(overlay));
    await probePathsAnswer(t, objects, config);
  });

  test(`overlay ${overlay}: kubectl kustomize renders the same (when kubectl with kustomize v4+ is installed)`, async (t) => {
    const dir = join(KUSTOMIZE, 'overlays', overlay);
    const available = await kubectlKustomizeAvailable();
    if (available !== true) {
      t.log(`${available}: only the built-in renderer was checked`);
      t.pass();
      return;
    }
    const rendered = await kubectlKustomize(dir);
    checkRendered(t, rendered, overlayExpectation(overlay));
    // Same objects once kustomize's hash suffix on generated ConfigMap names is taken off.
    const generated = new Map(
      find(rendered, 'ConfigMap').map((cm) => [cm.metadata.name, cm.metadata.name.replace(/-[a-z0-9]{10}$/, '')] as const),
    );
    const normalized = JSON.parse(JSON.stringify(rendered), (_key, value: unknown) => (typeof value === 'string' && generated.has(value) ? generated.get(value) : value)) as K8sObject[];
    const byId = (objects: K8sObject[]) => new Map(objects.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
    const ours = byId(renderKustomization(dir));
    const theirs = byId(normalized);
    t.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort());
    for (const [id, object] of ours) t.deepEqual(theirs.get(id), object, id);
  });
}

// ---------------------------------------------------------------------------------------------
// OpenShift
// ---------------------------------------------------------------------------------------------

const TEMPLATE_REQUIRED = { CACHE_SECRET: SECRETS['cache-secret'] };

function templateSecrets(objects: K8sObject[]): Record<string, string> {
  const [secret] = find(objects, 'Secret', 'github-mirror');
  const data = (secret?.stringData ?? {}) as Record<string, string>;
  // An empty string in the Secret is still a value; the app treats an empty variable as unset.
  return Object.fromEntries(Object.entries(data));
}

function checkTemplate(t: ExecutionContext, parameters: Record<string, string>, expected: Omit<Expectation, 'secretInManifests'>): MirrorConfig {
  const template = readTemplate();
  const objects = processTemplate(template, { ...TEMPLATE_REQUIRED, ...parameters });
  const secrets = templateSecrets(objects);
  t.is(secrets['cache-secret'], TEMPLATE_REQUIRED.CACHE_SECRET);
  const config = checkRendered(t, objects, { ...expected, secretInManifests: true, secrets });
  const [route] = find(objects, 'Route', 'github-mirror');
  t.truthy(route, 'a Route');
  const routeSpec = (route?.spec ?? {}) as Json;
  t.is((routeSpec.to as Json).name, 'github-mirror');
  const [service] = find(objects, 'Service', 'github-mirror');
  t.true(((service?.spec as Json).ports as Json[]).some((p) => p.name === (routeSpec.port as Json).targetPort), 'Route port is a Service port');
  t.is((routeSpec.tls as Json).termination, 'edge');
  t.true(config.server.trustProxy, 'behind the router: trust X-Forwarded-*');
  return config;
}

test('OpenShift template: parameters declared = parameters used; required ones are enforced', (t) => {
  const template = readTemplate();
  const declared = new Set(template.parameters.map((p) => p.name));
  const used = referencedParameters(template);
  t.deepEqual([...used].filter((name) => !declared.has(name)), [], 'used but not declared');
  t.deepEqual([...declared].filter((name) => !used.has(name)), [], 'declared but not used');
  t.throws(() => processTemplate(template, {}), { message: /CACHE_SECRET/ }, 'CACHE_SECRET has no default');
  const secretParameter = template.parameters.find((p) => p.name === 'CACHE_SECRET');
  t.is(secretParameter?.generate, undefined, 'never generated: a new value on every `oc process` would empty the cache');
});

test('OpenShift template with defaults (shared Redis): validates and fits its configuration', async (t) => {
  const config = checkTemplate(t, { REDIS_URL: 'rediss://my-redis.example.internal:6379', REDIS_PASSWORD: 'pw' }, {
    backend: 'redis',
    hpa: true,
    image: IMAGE,
    check: (t2, c) => {
      t2.is(c.cache.redis.url, 'rediss://my-redis.example.internal:6379');
      t2.is(c.cache.redis.password, 'pw');
    },
  });
  const objects = processTemplate(readTemplate(), { ...TEMPLATE_REQUIRED, REDIS_PASSWORD: 'pw' });
  await probePathsAnswer(t, objects, config);
});

test('OpenShift template with the memory backend and S3 snapshots validates', (t) => {
  checkTemplate(t, { CACHE_BACKEND: 'memory', SNAPSHOT_STORE: 's3', SNAPSHOT_S3_BUCKET: 'snapshots', SNAPSHOT_S3_ENDPOINT: 'http://minio.minio.svc:9000', SNAPSHOT_S3_FORCE_PATH_STYLE: 'true' }, {
    backend: 'memory',
    hpa: true,
    check: (t2, c) => {
      t2.is(c.snapshot.store, 's3');
      t2.true(c.snapshot.s3.forcePathStyle);
    },
  });
});

test('OpenShift template with Redis Sentinel validates', (t) => {
  checkTemplate(t, { REDIS_SENTINELS: 'redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379,redis-node-2.redis-headless:26379', REDIS_SENTINEL_PASSWORD: 'spw', REDIS_PASSWORD: 'pw' }, {
    backend: 'redis',
    hpa: true,
    check: (t2, c) => {
      t2.is(c.cache.redis.sentinels.length, 3);
      t2.is(c.cache.redis.sentinelName, 'mymaster');
    },
  });
});

test('OpenShift template: a bad parameter is caught by the app validation', (t) => {
  const objects = processTemplate(readTemplate(), { ...TEMPLATE_REQUIRED, CACHE_BACKEND: 'mongo' });
  const deployment = find(objects, 'Deployment')[0] as K8sObject;
  t.throws(() => containerConfig(objects, deployment, templateSecrets(objects)), { message: /cache\.backend/ });
});
