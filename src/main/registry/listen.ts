import uWS, { type TemplatedApp, type us_listen_socket } from './uws.js';

/** The listen overload uWS has at runtime but its typings lack: host, port and options together. */
type ListenWithOptions = (
  host: string,
  port: number,
  options: number,
  cb: (socket: us_listen_socket | false) => void,
) => TemplatedApp;

/**
 * Listens on `host:port` (every address when `host` is undefined) with the port held exclusively.
 * uWS sets SO_REUSEPORT by default, so a second shoal on the same port would start without complaint and
 * take half of the first one's connections; with the port exclusive it fails to start instead.
 * Resolves with the listen socket and the bound port.
 */
export function listenExclusive(
  app: TemplatedApp,
  what: string,
  host: string | undefined,
  port: number,
): Promise<{ socket: us_listen_socket; port: number }> {
  return new Promise((resolve, reject) => {
    const done = (socket: us_listen_socket | false): void => {
      if (socket === false) {
        reject(new Error(`${what} cannot listen on ${host ?? '*'}:${port} (in use, or not an address here)`));
        return;
      }
      resolve({ socket, port: uWS.us_socket_local_port(socket) });
    };
    // The typings declare an enum the module does not export; the constant itself is exported.
    const exclusive = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;
    if (host === undefined) app.listen(port, exclusive, done);
    else (app.listen as unknown as ListenWithOptions).call(app, host, port, exclusive, done);
  });
}
