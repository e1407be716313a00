/**
 * Helpers for the deployment tests: strict YAML loading, a small kustomize renderer (the subset the
 * manifests in deploy/kubernetes use), OpenShift Template processing, and loading the mirror's
 * configuration the way a container of a rendered Deployment would.
 *
 * YAML comes from the `yaml` package (installed today as a dependency of testcontainers'
 * docker-compose; see the issue 8 report for making it a direct devDependency).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { resolveConfig, type ResolvedConfig } from '../../src/app/config/index.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const DEPLOY = join(ROOT, 'deploy');
export const KUSTOMIZE = join(DEPLOY, 'kubernetes');
export const OVERLAYS = ['memory', 'redis', 'redis-sentinel'] as const;
export const TEMPLATE = join(DEPLOY, 'openshift', 'github-mirror.template.yaml');

export type Json = Record<string, unknown>;

export interface K8sObject extends Json {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; [key: string]: unknown };
}

export function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------------------

/** Every *.yaml / *.yml file under `dir`, sorted. */
export function yamlFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (/\.ya?ml$/.test(entry.name)) out.push(path);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

export interface ParsedYaml {
  documents: unknown[];
  problems: string[];
}

/**
 * Parses every document of a YAML stream. Errors, warnings and duplicate keys are problems; so is a
 * document that reads differently under YAML 1.1 (what Kubernetes' parser follows: `on`, `yes`, `0755`
 * ...) and YAML 1.2, since kubectl and other tools would disagree on it.
 */
export function parseYaml(text: string, file = '<text>'): ParsedYaml {
  const problems: string[] = [];
  const read = (version: '1.1' | '1.2'): unknown[] => {
    const parsed = parseAllDocuments(text, { version, uniqueKeys: true, prettyErrors: true, strict: true });
    if (!Array.isArray(parsed)) return [];
    const docs: unknown[] = [];
    for (const doc of parsed) {
      for (const error of doc.errors) problems.push(`${file}: ${error.message}`);
      for (const warning of doc.warnings) problems.push(`${file}: ${warning.message}`);
      const value: unknown = doc.toJS({ maxAliasCount: 0 });
      if (value !== null && value !== undefined) docs.push(value);
    }
    return docs;
  };
  const documents = read('1.2');
  if (problems.length === 0) {
    const legacy = read('1.1');
    if (JSON.stringify(legacy) !== JSON.stringify(documents)) {
      problems.push(`${file}: reads differently as YAML 1.1 and 1.2 (quote values such as yes/no/on/off or 0755)`);
    }
  }
  return { documents, problems };
}

export function readYaml(file: string): unknown[] {
  const { documents, problems } = parseYaml(readFileSync(file, 'utf8'), relative(ROOT, file));
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return documents;
}

function asK8sObject(value: unknown, file: string): K8sObject {
  if (
    !isObject(value) ||
    typeof value.apiVersion !== 'string' ||
    typeof value.kind !== 'string' ||
    !isObject(value.metadata) ||
    typeof value.metadata.name !== 'string'
  ) {
    throw new Error(`${relative(ROOT, file)}: not a Kubernetes object (apiVersion, kind, metadata.name)`);
  }
  return value as K8sObject;
}

// ---------------------------------------------------------------------------------------------
// kustomize, the subset used here
// ---------------------------------------------------------------------------------------------

export interface Kustomization extends Json {
  kind?: string;
  resources?: string[];
  components?: string[];
  patches?: Array<{ path?: string; patch?: string }>;
  configMapGenerator?: Array<{ name: string; behavior?: 'create' | 'replace' | 'merge'; files?: string[]; literals?: string[] }>;
  images?: Array<{ name: string; newName?: string; newTag?: string }>;
}

const SUPPORTED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'configMapGenerator', 'images']);

export function kustomizationFile(dir: string): string | undefined {
  return ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((name) => join(dir, name)).find((path) => existsSync(path));
}

export function readKustomization(dir: string): Kustomization {
  const file = kustomizationFile(dir);
  if (file === undefined) throw new Error(`${relative(ROOT, dir)}: no kustomization.yaml`);
  const [doc] = readYaml(file);
  if (!isObject(doc)) throw new Error(`${relative(ROOT, file)}: not a mapping`);
  const unsupported = Object.keys(doc).filter((key) => !SUPPORTED_FIELDS.has(key));
  if (unsupported.length > 0) {
    throw new Error(`${relative(ROOT, file)}: fields the test renderer does not know: ${unsupported.join(', ')} (extend test/deploy/manifests.ts)`);
  }
  return doc;
}

/** `key=path` or `path` of a configMapGenerator `files` entry. */
export function generatorFile(entry: string): { key: string; path: string } {
  const eq = entry.indexOf('=');
  return eq > 0 ? { key: entry.slice(0, eq), path: entry.slice(eq + 1) } : { key: basename(entry), path: entry };
}

/** Every file or directory a kustomization refers to, resolved (whether or not it exists). */
export function referencedPaths(dir: string, k: Kustomization): string[] {
  const paths: string[] = [];
  for (const entry of k.resources ?? []) paths.push(resolve(dir, entry));
  for (const entry of k.components ?? []) paths.push(resolve(dir, entry));
  for (const patch of k.patches ?? []) if (patch.path !== undefined) paths.push(resolve(dir, patch.path));
  for (const generator of k.configMapGenerator ?? []) {
    for (const entry of generator.files ?? []) paths.push(resolve(dir, generatorFile(entry).path));
  }
  return paths;
}

/** Arrays merged item by item on these keys (Kubernetes' strategic merge patch keys). */
const MERGE_KEYS: Record<string, string> = {
  containers: 'name',
  initContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ports: 'containerPort',
  topologySpreadConstraints: 'topologyKey',
};

/** Strategic merge patch, as far as these manifests need it. */
export function strategicMerge(target: unknown, patch: unknown, field = ''): unknown {
  if (patch === null) return undefined;
  if (isObject(target) && isObject(patch)) {
    const out: Json = { ...target };
    for (const [key, value] of Object.entries(patch)) {
      const merged = strategicMerge(target[key], value, key);
      if (merged === undefined) delete out[key];
      else out[key] = merged;
    }
    return out;
  }
  const mergeKey = MERGE_KEYS[field];
  if (mergeKey !== undefined && Array.isArray(target) && Array.isArray(patch)) {
    const out: unknown[] = [...(target as unknown[])];
    for (const item of patch as unknown[]) {
      const index = isObject(item) ? out.findIndex((existing) => isObject(existing) && existing[mergeKey] === item[mergeKey]) : -1;
      if (index >= 0) out[index] = strategicMerge(out[index], item);
      else out.push(item);
    }
    return out;
  }
  return patch;
}

function applyLayer(objects: K8sObject[], dir: string, k: Kustomization): K8sObject[] {
  let out = objects;
  for (const entry of k.components ?? []) {
    const componentDir = resolve(dir, entry);
    const component = readKustomization(componentDir);
    if (component.kind !== 'Component') throw new Error(`${relative(ROOT, componentDir)}: listed in components but kind is not Component`);
    out = applyLayer([...out, ...loadResources(componentDir, component)], componentDir, { ...component, components: [], resources: [] });
  }
  for (const generator of k.configMapGenerator ?? []) {
    const data: Record<string, string> = {};
    for (const entry of generator.files ?? []) {
      const { key, path } = generatorFile(entry);
      data[key] = readFileSync(resolve(dir, path), 'utf8');
    }
    for (const literal of generator.literals ?? []) {
      const eq = literal.indexOf('=');
      data[literal.slice(0, eq)] = literal.slice(eq + 1);
    }
    const behavior = generator.behavior ?? 'create';
    const index = out.findIndex((o) => o.kind === 'ConfigMap' && o.metadata.name === generator.name);
    if (behavior === 'create') {
      if (index >= 0) throw new Error(`configMapGenerator ${generator.name}: already exists (use behavior: replace or merge)`);
      out = [...out, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data }];
    } else {
      const existing = out[index];
      if (existing === undefined) throw new Error(`configMapGenerator ${generator.name}: behavior ${behavior} but no such ConfigMap`);
      const merged = behavior === 'merge' ? { ...(existing.data as Record<string, string>), ...data } : data;
      out = out.map((o, i) => (i === index ? { ...o, data: merged } : o));
    }
  }
  for (const entry of k.patches ?? []) {
    const docs = entry.path !== undefined ? readYaml(resolve(dir, entry.path)) : parseYaml(entry.patch ?? '').documents;
    for (const doc of docs) {
      if (!isObject(doc) || !isObject(doc.metadata)) throw new Error('patch without kind / metadata.name');
      const index = out.findIndex((o) => o.kind === doc.kind && o.metadata.name === (doc.metadata as Json).name);
      if (index < 0) throw new Error(`patch for ${String(doc.kind)}/${String((doc.metadata).name)}: no such object`);
      out = out.map((o, i) => (i === index ? (strategicMerge(o, doc) as K8sObject) : o));
    }
  }
  for (const image of k.images ?? []) {
    out = out.map((o) => rewriteImages(o, image));
  }
  return out;
}

function rewriteImages(object: K8sObject, image: { name: string; newName?: string; newTag?: string }): K8sObject {
  const walk = (value: unknown, key: string): unknown => {
    if (Array.isArray(value)) return value.map((item) => walk(item, key));
    if (!isObject(value)) return value;
    const out: Json = {};
    for (const [k, v] of Object.entries(value)) out[k] = walk(v, k);
    if ((key === 'containers' || key === 'initContainers') && typeof out.image === 'string') {
      const match = /^([^:@]+(?::\d+\/[^:@]+)?)(?::([^@]+))?(@.+)?$/.exec(out.image);
      if (match?.[1] === image.name) {
        out.image = `${image.newName ?? image.name}${image.newTag !== undefined ? `:${image.newTag}` : match[2] !== undefined ? `:${match[2]}` : ''}`;
      }
    }
    return out;
  };
  return walk(object, '') as K8sObject;
}

function loadResources(dir: string, k: Kustomization): K8sObject[] {
  const out: K8sObject[] = [];
  for (const entry of k.resources ?? []) {
    const path = resolve(dir, entry);
    if (statSync(path).isDirectory()) out.push(...renderKustomization(path));
    else out.push(...readYaml(path).map((doc) => asK8sObject(doc, path)));
  }
  return out;
}

/** Renders a kustomization directory: resources, then components, generators, patches, images. */
export function renderKustomization(dir: string): K8sObject[] {
  const k = readKustomization(dir);
  return applyLayer(loadResources(dir, k), dir, k);
}

const execFileAsync = promisify(execFile);

/**
 * The kustomize built into kubectl, when kubectl is installed and its kustomize is v4 or later
 * (components, `patches`); otherwise the reason it cannot be used.
 */
export async function kubectlKustomizeAvailable(): Promise<string | true> {
  let stdout: string;
  try {
    ({ stdout } = await execFileAsync('kubectl', ['version', '--client', '-o', 'json'], { timeout: 30_000 }));
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'kubectl is not installed' : `kubectl version failed: ${String(error)}`;
  }
  const version = (JSON.parse(stdout) as { kustomizeVersion?: string }).kustomizeVersion;
  const major = Number(/^v?(\d+)/.exec(version ?? '')?.[1] ?? 0);
  return major >= 4 ? true : `kubectl's kustomize is ${version ?? 'missing'} (v4 or later needed)`;
}

/** `kubectl kustomize DIR` (check kubectlKustomizeAvailable first). */
export async function kubectlKustomize(dir: string): Promise<K8sObject[]> {
  const { stdout } = await execFileAsync('kubectl', ['kustomize', dir], { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 });
  const { documents, problems } = parseYaml(stdout, `kubectl kustomize ${relative(ROOT, dir)}`);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  return documents.map((doc) => asK8sObject(doc, dir));
}

// ---------------------------------------------------------------------------------------------
// OpenShift Template
// ---------------------------------------------------------------------------------------------

export interface TemplateParameter {
  name: string;
  value?: string;
  required?: boolean;
  generate?: string;
  from?: string;
}

export interface OpenShiftTemplate extends Json {
  objects: unknown[];
  parameters: TemplateParameter[];
}

export function readTemplate(file = TEMPLATE): OpenShiftTemplate {
  const [doc] = readYaml(file);
  if (!isObject(doc) || doc.kind !== 'Template' || !Array.isArray(doc.objects) || !Array.isArray(doc.parameters)) {
    throw new Error(`${relative(ROOT, file)}: not an OpenShift Template with objects and parameters`);
  }
  return doc as OpenShiftTemplate;
}

const PARAM = /\$\{\{?([A-Za-z0-9_]+)\}?\}/g;

/** Names of the parameters the objects refer to (`${NAME}` and `${{NAME}}`). */
export function referencedParameters(template: OpenShiftTemplate): Set<string> {
  const names = new Set<string>();
  for (const match of JSON.stringify(template.objects).matchAll(PARAM)) if (match[1]) names.add(match[1]);
  return names;
}

/**
 * What `oc process` does: `${NAME}` inside a string becomes the value; a string that is exactly
 * `${{NAME}}` becomes the value parsed as JSON (numbers, booleans). Returns the objects.
 */
export function processTemplate(template: OpenShiftTemplate, given: Record<string, string>): K8sObject[] {
  const values = new Map<string, string>();
  for (const parameter of template.parameters) {
    const value = given[parameter.name] ?? parameter.value;
    if (value === undefined && parameter.required === true) throw new Error(`template parameter ${parameter.name} is required`);
    values.set(parameter.name, value ?? '');
  }
  for (const name of Object.keys(given)) if (!values.has(name)) throw new Error(`unknown template parameter ${name}`);
  const lookup = (name: string): string => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`template refers to an undeclared parameter ${name}`);
    return value;
  };
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const whole = /^\$\{\{([A-Za-z0-9_]+)\}\}$/.exec(value);
      if (whole?.[1]) return JSON.parse(lookup(whole[1])) as unknown;
      return value.replace(PARAM, (_match, name: string) => lookup(name));
    }
    if (Array.isArray(value)) return value.map(walk);
    if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    return value;
  };
  const labels = isObject(template.labels) ? (template.labels as Record<string, string>) : {};
  return template.objects.map((object) => {
    const processed = asK8sObject(walk(object), TEMPLATE);
    processed.metadata = { ...processed.metadata, labels: { ...labels, ...processed.metadata.labels } };
    return processed;
  });
}

// ---------------------------------------------------------------------------------------------
// The mirror's configuration as a container sees it
// ---------------------------------------------------------------------------------------------

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean }; configMapKeyRef?: { name: string; key: string } };
}

export interface Container extends Json {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: Array<{ name?: string; containerPort: number; protocol?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string; readOnly?: boolean; subPath?: string }>;
}

export function find(objects: K8sObject[], kind: string, name?: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
}

export function podSpec(deployment: K8sObject): Json {
  const spec = deployment.spec as Json;
  return (spec.template as Json).spec as Json;
}

export function mirrorContainer(deployment: K8sObject): Container {
  const containers = podSpec(deployment).containers as Container[];
  const container = containers.find((c) => c.name === 'github-mirror') ?? containers[0];
  if (container === undefined) throw new Error('Deployment has no container');
  return container;
}

/** The file the container's args (--config FILE / --config=FILE) or MIRROR_CONFIG name. */
export function configFilePath(container: Container): string | undefined {
  const args = [...(container.command ?? []), ...(container.args ?? [])];
  for (let i = 0; i < args.length; i += 1) {
    const arg = args[i] ?? '';
    if (arg === '--config') return args[i + 1];
    if (arg.startsWith('--config=')) return arg.slice('--config='.length);
  }
  return container.env?.find((e) => e.name === 'MIRROR_CONFIG')?.value;
}

/** The text of `path` inside the container when it comes from a ConfigMap volume. */
export function fileFromConfigMap(objects: K8sObject[], deployment: K8sObject, path: string): string {
  const container = mirrorContainer(deployment);
  const volumes = (podSpec(deployment).volumes ?? []) as Array<Json & { name: string }>;
  for (const mount of container.volumeMounts ?? []) {
    const prefix = mount.mountPath.endsWith('/') ? mount.mountPath : `${mount.mountPath}/`;
    if (!path.startsWith(prefix)) continue;
    const volume = volumes.find((v) => v.name === mount.name);
    const configMap = volume?.configMap as { name: string; items?: Array<{ key: string; path: string }> } | undefined;
    if (configMap === undefined) continue;
    const inside = path.slice(prefix.length);
    const key = configMap.items?.find((item) => item.path === inside)?.key ?? inside;
    const [object] = find(objects, 'ConfigMap', configMap.name);
    if (object === undefined) throw new Error(`ConfigMap ${configMap.name} (volume ${mount.name}) is not part of the manifests`);
    const text = (object.data as Record<string, string> | undefined)?.[key];
    if (text === undefined) throw new Error(`ConfigMap ${configMap.name} has no key ${key}`);
    return text;
  }
  throw new Error(`${path} is not on a ConfigMap volume of the container`);
}

/** The container's environment, with `secrets[key]` for secretKeyRef values (a missing optional key stays unset). */
export function containerEnv(container: Container, secrets: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    if (variable.value !== undefined) env[variable.name] = variable.value;
    const ref = variable.valueFrom?.secretKeyRef;
    if (ref !== undefined) {
      const value = secrets[ref.key];
      if (value !== undefined) env[variable.name] = value;
      else if (ref.optional !== true) throw new Error(`${variable.name}: secret key ${ref.key} is required and the test gave none`);
    }
  }
  return env;
}

/**
 * Loads the configuration the way the container would: its environment (secrets filled from
 * `secrets`), its config file taken from the ConfigMap, the project's config/ directory (the image's
 * /app/config). Throws the app's ConfigError when the configuration is invalid.
 */
export function containerConfig(objects: K8sObject[], deployment: K8sObject, secrets: Record<string, string>, envOverride: Record<string, string | undefined> = {}): ResolvedConfig {
  const container = mirrorContainer(deployment);
  const path = configFilePath(container);
  if (path === undefined) throw new Error('the container passes no --config file nor MIRROR_CONFIG');
  const text = fileFromConfigMap(objects, deployment, path);
  const dir = mkdtempSync(join(tmpdir(), 'ghm-deploy-config-'));
  try {
    const file = join(dir, posix.basename(path));
    writeFileSync(file, text);
    const env: Record<string, string | undefined> = { ...containerEnv(container, secrets), ...envOverride };
    delete env.MIRROR_CONFIG;
    return resolveConfig({ env, args: ['--config', file], configDir: join(ROOT, 'config') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Kubernetes quantity → bytes or cores. */
export function quantity(value: unknown): number {
  const text = String(value);
  const match = /^(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/.exec(text);
  if (!match?.[1]) throw new Error(`not a quantity: ${text}`);
  const factors: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    Ki: 1024,
    Mi: 1024 ** 2,
    Gi: 1024 ** 3,
    Ti: 1024 ** 4,
  };
  return Number(match[1]) * (match[2] ? (factors[match[2]] ?? 1) : 1);
}
