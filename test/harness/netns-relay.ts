// Run inside a test network namespace (`ip netns exec NS node netns-relay.js SOCKET`): listens on the unix
// socket SOCKET (unix sockets are files, reachable from every namespace) and, for each connection, reads one
// line `host:port`, connects to that address inside the namespace, and pipes both ways. The harness puts a
// loopback TCP port in front of it, so tests reach a node's ports without an address outside the
// namespaces they made.
import { createServer, connect as tcp } from 'node:net';
import { endTogether } from './end-together.js';

const path = process.argv[2];
if (path === undefined) throw new Error('usage: netns-relay.js SOCKET');

const server = createServer((client) => {
  let head = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = Buffer.concat([head, chunk]);
    const end = head.indexOf(10);
    if (end === -1) return;
    client.off('data', onData);
    client.pause();
    const [host, port] = head
      .subarray(0, end)
      .toString()
      .split(/:(?=\d+$)/);
    const target = tcp({ host: host as string, port: Number(port) });
    const rest = head.subarray(end + 1);
    target.on('connect', () => {
      if (rest.length > 0) target.write(rest);
      client.pipe(target).pipe(client);
      client.resume();
    });
    endTogether(client, target);
  };
  client.on('data', onData);
});
server.listen(path, () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => process.exit(0));
