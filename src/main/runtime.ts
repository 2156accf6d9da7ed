// Imported first by the entry point, before any module loads uWebSockets.js.

/** Node's module ABI of the one line both shoal and this uWebSockets.js build support: Node 20. */
export const SUPPORTED_ABI = '115';
/** The oldest Node 20 shoal runs on (AbortSignal.any arrived in 20.3). */
const MIN_MINOR = 3;

/**
 * Why shoal cannot run here, or undefined when it can. On any other Node, uWebSockets.js quietly loads a
 * slow pure-JS fallback with only a console warning; shoal refuses instead, and says what it needs.
 */
export function unsupportedRuntime(
  versions: { node: string; modules: string },
  env: Readonly<Record<string, string | undefined>>,
): string | undefined {
  const [major, minor] = versions.node.split('.').map(Number) as [number, number];
  if (versions.modules !== SUPPORTED_ABI || major !== 20 || minor < MIN_MINOR) {
    return `shoal needs Node.js 20.${MIN_MINOR} or later 20.x (found ${versions.node}): its uWebSockets.js build ships a native binary for that line only`;
  }
  if (/^(1|true)$/i.test(env.UWS_USE_FALLBACK ?? '')) {
    return 'UWS_USE_FALLBACK is set: shoal serves blobs only through the native uWebSockets.js binary; unset it';
  }
  return undefined;
}

const problem = unsupportedRuntime(process.versions, process.env);
if (problem !== undefined) {
  process.stderr.write(`shoal: ${problem}\n`);
  process.exit(2);
}
