import { execFile } from 'node:child_process';
import { join } from 'node:path';
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

/**
 * Renders a kustomization directory (relative to the root) with the real `kubectl kustomize`: the one on
 * PATH, or `$KUBECTL` (to check the manifests against another kubectl's kustomize, Debian's 1.20 say).
 */
export async function render(dir: string): Promise<K8sObject[]> {
  // Its warnings (newer kustomize deprecates the `bases` that Debian's older one needs) go to stderr.
  const kubectl = process.env.KUBECTL ?? 'kubectl';
  const { stdout } = await promisify(execFile)(kubectl, ['kustomize', join(ROOT, dir)], {
    timeout: 60_000,
    maxBuffer: 16 << 20,
  });
  const docs = parseAllDocuments(stdout);
  const objects: K8sObject[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0)
      throw new Error(`${dir}: kubectl rendered bad YAML: ${doc.errors[0]?.message}`);
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
