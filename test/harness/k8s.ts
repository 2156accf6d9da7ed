import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { before } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import ts from 'typescript';
import { parseAllDocuments } from 'yaml';

/** The repository root (this file runs from dist/test/harness). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** One rendered Kubernetes object. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** Where test/install-k8s-tools.sh puts kubectl and helm (from the npm registry). */
const TOOLS = join(ROOT, 'node_modules', '.cache', 'shoal-k8s-tools');

/** The kubectl the manifests are rendered with: `$KUBECTL`, else the current one the test setup installed. */
export const KUBECTL = process.env.KUBECTL ?? join(TOOLS, 'kubectl');
/** The helm the chart is rendered with: `$HELM`, else the one the test setup installed. */
export const HELM = process.env.HELM ?? join(TOOLS, 'helm');

/** Renders a kustomization directory (relative to the root) with the real `kubectl kustomize`. */
export async function render(dir: string): Promise<K8sObject[]> {
  if (!existsSync(KUBECTL)) throw new Error(`${KUBECTL} is missing: run bash test/install-k8s-tools.sh`);
  const { stdout } = await promisify(execFile)(KUBECTL, ['kustomize', join(ROOT, dir)], {
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  return parseObjects(stdout, dir);
}

/**
 * Renders what an operator's own kustomization would: `resources` (directories under k8s/) and then
 * `components` in order, written to a kustomization of its own under dist/ (kustomize reads nothing by an
 * absolute path).
 */
export async function renderComposed(
  name: string,
  resources: readonly string[],
  components: readonly string[],
): Promise<K8sObject[]> {
  const dir = join('dist', 'k8s-render', name);
  await mkdir(join(ROOT, dir), { recursive: true });
  const up = (paths: readonly string[]): string[] => paths.map((path) => `../../../k8s/${path}`);
  const text = [
    'apiVersion: kustomize.config.k8s.io/v1beta1',
    'kind: Kustomization',
    `resources: ${JSON.stringify(up(resources))}`,
    `components: ${JSON.stringify(up(components))}`,
    '',
  ].join('\n');
  await writeFile(join(ROOT, dir, 'kustomization.yaml'), text);
  return render(dir);
}

/** Every optional component under k8s/components (components/image names the image: it goes with each). */
export const COMPONENTS = readdirSync(join(ROOT, 'k8s', 'components'))
  .filter((name) => name !== 'image')
  .sort();
/** Components for one distribution's paths: alternatives to each other, and needed by the cleanup too. */
export const DISTROS = ['k3s', 'rke2'];

/**
 * Every way the manifests are meant to be installed, by name: the default install (`k8s`), every component
 * with the base (`base + psk`), all of them together (`k8s/examples/all`), the cleanup, alone and with
 * each distribution's paths (`cleanup + k3s`), and the Helm chart (`helm: …`).
 */
export async function renderInstalls(): Promise<Map<string, K8sObject[]>> {
  const rendered = new Map<string, K8sObject[]>();
  for (const dir of ['k8s', 'k8s/examples/all', 'k8s/cleanup']) rendered.set(dir, await render(dir));
  for (const name of COMPONENTS) {
    const components = [`components/${name}`, 'components/image'];
    rendered.set(`base + ${name}`, await renderComposed(`base-${name}`, ['base'], components));
    if (DISTROS.includes(name))
      rendered.set(`cleanup + ${name}`, await renderComposed(`cleanup-${name}`, ['cleanup'], components));
  }
  // The Helm chart, through the same checks: at its defaults, with everything on, and with the values of a
  // Spegel user.
  const { ALL_ON, renderChart, SPEGEL_VALUES } = await import('./chart.js');
  rendered.set('helm: defaults', await renderChart('defaults', {}));
  rendered.set('helm: all on', await renderChart('all-on', ALL_ON));
  rendered.set('helm: a Spegel values.yaml', await renderChart('spegel', SPEGEL_VALUES));
  return rendered;
}

/** Every object in a multi-document YAML stream. */
export function parseObjects(text: string, from: string): K8sObject[] {
  const objects: K8sObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length > 0) throw new Error(`${from}: bad YAML: ${doc.errors[0]?.message}`);
    const value = doc.toJS() as K8sObject | null;
    if (value !== null) objects.push(value);
  }
  return objects;
}

/** Where kubernetes-models keeps each API group's models (the Prometheus Operator's in its own package). */
function modelModule(apiVersion: string, kind: string): string {
  if (apiVersion.startsWith('monitoring.coreos.com/'))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

/**
 * Validates objects against the Kubernetes schemas in two ways, both from kubernetes-models: its runtime
 * validator (types, required fields, formats), and a TypeScript check of each object as a literal of the
 * model's interface, which refuses any field the schema does not name (the runtime validator lets unknown
 * fields through, and a typo'd field is what a test must catch). Returns every problem found.
 */
export async function schemaProblems(objects: readonly K8sObject[]): Promise<string[]> {
  const problems: string[] = [];
  const lines: string[] = [];
  for (const [i, object] of objects.entries()) {
    const where = `${object.kind}/${object.metadata?.name}`;
    const module = modelModule(object.apiVersion, object.kind);
    let model: Record<string, new (data: unknown) => { validate(): void }>;
    try {
      model = (await import(module)) as typeof model;
    } catch {
      problems.push(`${where}: no schema for ${object.apiVersion} ${object.kind}`);
      continue;
    }
    const Model = model[object.kind];
    if (Model === undefined) {
      problems.push(`${where}: no model ${object.kind} in ${module}`);
      continue;
    }
    try {
      new Model(object).validate();
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message.slice(0, 500)}`);
    }
    lines.push(`import type { I${object.kind} as T${i} } from '${module}';`);
    lines.push(`export const o${i}: T${i} = ${JSON.stringify(object)};`);
  }
  problems.push(...typeProblems(lines.join('\n')));
  return problems;
}

/** Type-checks `source` as a module at the repository root, so it resolves the models from node_modules. */
function typeProblems(source: string): string[] {
  const file = join(ROOT, 'k8s', '__rendered__.ts');
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const { fileExists, readFile, getSourceFile } = host;
  host.fileExists = (name) => name === file || fileExists.call(host, name);
  host.readFile = (name) => (name === file ? source : readFile.call(host, name));
  host.getSourceFile = (name, version, ...rest) =>
    name === file
      ? ts.createSourceFile(name, source, version)
      : getSourceFile.call(host, name, version, ...rest);
  const program = ts.createProgram([file], options, host);
  return ts.getPreEmitDiagnostics(program).map((diagnostic) => {
    const text = ts.flattenDiagnosticMessageText(diagnostic.messageText, ' ');
    return `schema: ${text.slice(0, 400)}`;
  });
}

/**
 * The installs of renderInstalls, rendered once before the calling suite's tests (call it inside a
 * `describe`). `get(name)` fails the test on a name that was not rendered.
 */
export function installsUnderTest(): { get(name: string): K8sObject[]; all(): Map<string, K8sObject[]> } {
  let rendered = new Map<string, K8sObject[]>();
  before(async () => {
    rendered = await renderInstalls();
  });
  return {
    get(name) {
      const objects = rendered.get(name);
      if (objects === undefined) throw new Error(`${name} was not rendered`);
      return objects;
    },
    all: () => rendered,
  };
}
