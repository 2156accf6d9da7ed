import type { Socket } from 'node:net';

/** Ties two sockets of a relay together: an error or close on either destroys both. */
export function endTogether(a: Socket, b: Socket): void {
  const close = (): void => {
    a.destroy();
    b.destroy();
  };
  for (const socket of [a, b]) {
    socket.on('error', close);
    socket.on('close', close);
  }
}
