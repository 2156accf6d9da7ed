import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { StoreUnavailableError } from '../errors.js';

/** A descriptor as containerd's API returns it. */
export interface ContainerdDescriptor {
  mediaType: string;
  digest: string;
  size: number;
}

export interface ContainerdImage {
  name: string;
  target: ContainerdDescriptor;
  labels: Record<string, string>;
  /** When containerd last pulled or changed this image (a protobuf Timestamp). */
  updatedAt?: { seconds: number; nanos: number } | null;
}

export interface ContainerdContentInfo {
  digest: string;
  size: number;
  labels: Record<string, string>;
}

/** A Content/Read call: its messages, and a way to end it early. */
export interface ContentReadStream {
  messages: AsyncIterator<{ offset: number; data: Buffer }>;
  cancel(): void;
}

export interface ContainerdClientInit {
  /** Path of containerd's gRPC socket. */
  socket: string;
  /** Namespace sent as `containerd-namespace` metadata on every call. */
  namespace: string;
  /** Deadline of each unary call, in ms. */
  timeoutMs: number;
}

const PROTO_DIR = fileURLToPath(new URL('./proto/', import.meta.url));
const PROTO_FILES = [
  'images.proto',
  'content.proto',
  'events.proto',
  'introspection.proto',
  'version.proto',
  'namespaces.proto',
  'cri.proto',
];

/** What containerd's CRI plugin says of its configuration (`crictl info`), or why it said nothing. */
export type CriConfig = { config: string } | { error: string };

type Callback = (err: grpc.ServiceError | null, response: unknown) => void;
type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  cb: Callback,
) => void;
type StreamMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options?: grpc.CallOptions,
) => grpc.ClientReadableStream<unknown>;
type Service = grpc.Client;

/** Looks up a generated method; proto-loader builds them at runtime, so they carry no static types. */
function method<T>(service: Service, name: string): T {
  const fn = (service as unknown as Record<string, unknown>)[name];
  if (typeof fn !== 'function') throw new Error(`containerd proto has no method ${name}`);
  return fn.bind(service) as T;
}

function loadServices(): Record<string, grpc.ServiceClientConstructor> {
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [PROTO_DIR],
    keepCase: false,
    longs: Number,
    defaults: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: Record<string, { v1: Record<string, grpc.ServiceClientConstructor> }> };
    runtime: { v1: Record<string, grpc.ServiceClientConstructor> };
  };
  const pick = (pkg: string, name: string): grpc.ServiceClientConstructor => {
    const ctor = root.containerd.services[pkg]?.v1[name];
    if (ctor === undefined) throw new Error(`containerd proto is missing ${pkg}.${name}`);
    return ctor;
  };
  return {
    images: pick('images', 'Images'),
    content: pick('content', 'Content'),
    events: pick('events', 'Events'),
    introspection: pick('introspection', 'Introspection'),
    version: pick('version', 'Version'),
    namespaces: pick('namespaces', 'Namespaces'),
    cri: root.runtime.v1.RuntimeService as grpc.ServiceClientConstructor,
  };
}

/**
 * gRPC's reconnect backoff grows to 2 minutes, made for servers across a network. containerd is a local
 * socket that comes back seconds after a restart: retried every second at most, shoal finds it at once.
 */
const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.max_receive_message_length': 8 << 20,
  'grpc.initial_reconnect_backoff_ms': 200,
  'grpc.max_reconnect_backoff_ms': 1000,
};

/** The parts of containerd's gRPC API shoal uses. The only module that talks gRPC. */
export class ContainerdClient {
  readonly namespace: string;
  readonly #timeoutMs: number;
  readonly #metadata = new grpc.Metadata();
  readonly #images: Service;
  readonly #content: Service;
  readonly #introspection: Service;
  readonly #events: Service;
  readonly #version: Service;
  readonly #namespaces: Service;
  readonly #cri: Service;

  constructor(init: ContainerdClientInit) {
    this.namespace = init.namespace;
    this.#timeoutMs = init.timeoutMs;
    this.#metadata.set('containerd-namespace', init.namespace);
    const services = loadServices();
    const address = `unix://${init.socket}`;
    const credentials = grpc.credentials.createInsecure();
    const make = (name: string): Service => {
      const ctor = services[name];
      if (ctor === undefined) throw new Error(`no ${name} service`);
      return new ctor(address, credentials, CHANNEL_OPTIONS) as Service;
    };
    this.#images = make('images');
    this.#content = make('content');
    this.#introspection = make('introspection');
    this.#events = make('events');
    this.#version = make('version');
    this.#namespaces = make('namespaces');
    this.#cri = make('cri');
  }

  /** containerd's version (`v1.6.20`, `1.6.20~ds1`, `2.1.4`). */
  async version(): Promise<string> {
    const response = (await this.#unary(this.#version, 'version', {})) as { version: string };
    return response.version;
  }

  /** Whether namespace `name` exists (kubelet's images live in `k8s.io`). */
  async namespaceExists(name: string): Promise<boolean> {
    const response = (await this.#unary(this.#namespaces, 'list', {})) as {
      namespaces: Array<{ name: string }>;
    };
    return response.namespaces.some((namespace) => namespace.name === name);
  }

  /**
   * The CRI plugin's configuration as JSON, from a verbose `Status` (what `crictl info` prints), or why there
   * is none (the plugin is disabled, or containerd is not serving CRI on this socket).
   */
  async criConfig(): Promise<CriConfig> {
    try {
      const response = (await this.#unary(this.#cri, 'status', { verbose: true })) as {
        info: Record<string, string>;
      };
      const config = response.info.config;
      return config === undefined ? { error: 'the CRI status carries no config' } : { config };
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  /** containerd's server UUID; proves the socket answers. */
  async serverId(): Promise<string> {
    const response = (await this.#unary(this.#introspection, 'server', {})) as { uuid: string };
    return response.uuid;
  }

  async getImage(name: string): Promise<ContainerdImage | undefined> {
    const response = (await this.#unaryOrNotFound(this.#images, 'get', { name })) as
      | { image: ContainerdImage }
      | undefined;
    return response?.image;
  }

  async listImages(filters: string[] = []): Promise<ContainerdImage[]> {
    const response = (await this.#unary(this.#images, 'list', { filters })) as { images: ContainerdImage[] };
    return response.images;
  }

  async contentInfo(digest: string): Promise<ContainerdContentInfo | undefined> {
    const response = (await this.#unaryOrNotFound(this.#content, 'info', { digest })) as
      | { info: ContainerdContentInfo }
      | undefined;
    return response?.info;
  }

  /** Every piece of content in the namespace (Content/List streams it in batches). */
  async listContent(): Promise<ContainerdContentInfo[]> {
    const call = method<StreamMethod>(this.#content, 'list')({ filters: [] }, this.#metadata, {
      deadline: Date.now() + this.#timeoutMs * 6,
    });
    const infos: ContainerdContentInfo[] = [];
    try {
      for await (const batch of call as unknown as AsyncIterable<{ info: ContainerdContentInfo[] }>)
        infos.push(...batch.info);
    } catch (err) {
      throw new StoreUnavailableError(`containerd content list failed: ${(err as Error).message}`, {
        cause: err,
      });
    }
    return infos;
  }

  /** Streams `size` bytes of content from `offset`; containerd sends them in messages of up to 1 MiB. */
  readContent(digest: string, offset: number, size: number): ContentReadStream {
    const call = method<StreamMethod>(this.#content, 'read')({ digest, offset, size }, this.#metadata);
    return {
      messages: (call as unknown as AsyncIterable<{ offset: number; data: Buffer }>)[Symbol.asyncIterator](),
      cancel: () => {
        // Cancelling makes the call emit CANCELLED; with no reader left that would be an uncaught error.
        call.on('error', () => undefined);
        call.cancel();
      },
    };
  }

  /** Subscribes to containerd events; returns the live stream (cancel() ends it). */
  subscribe(filters: string[]): grpc.ClientReadableStream<unknown> {
    return method<StreamMethod>(this.#events, 'subscribe')({ filters }, this.#metadata);
  }

  close(): void {
    for (const client of [
      this.#images,
      this.#content,
      this.#introspection,
      this.#events,
      this.#version,
      this.#namespaces,
      this.#cri,
    ])
      client.close();
  }

  async #unary(service: Service, name: string, request: unknown): Promise<unknown> {
    const call = method<UnaryMethod>(service, name);
    return new Promise((resolve, reject) => {
      const options: grpc.CallOptions = { deadline: Date.now() + this.#timeoutMs };
      call(request, this.#metadata, options, (err, response) => {
        if (err === null) resolve(response);
        else reject(new StoreUnavailableError(`containerd ${name} failed: ${err.message}`, { cause: err }));
      });
    });
  }

  async #unaryOrNotFound(service: Service, name: string, request: unknown): Promise<unknown> {
    try {
      return await this.#unary(service, name, request);
    } catch (err) {
      if (((err as Error).cause as grpc.ServiceError | undefined)?.code === grpc.status.NOT_FOUND)
        return undefined;
      throw err;
    }
  }
}
