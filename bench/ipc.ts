// Request/response over a child process's IPC channel: the orchestrator calls methods that a child process serves.
import { type ChildProcess, fork } from 'node:child_process';

/** A child's methods: each takes one JSON-serializable params value and answers one. */
// biome-ignore lint/suspicious/noExplicitAny: a method table maps names to arbitrary JSON shapes.
export type Methods = Record<string, { params: any; result: any }>;

type Handlers<M extends Methods> = { [K in keyof M]: (params: M[K]['params']) => Promise<M[K]['result']> };

interface Call {
  id: number;
  method: string;
  params: unknown;
}

type Reply = { id: number; result: unknown } | { id: number; error: string };

const STDERR_LIMIT = 16 * 1024;

/**
 * Inside a child: answers calls until the parent goes away. The parent's death closes the channel too, so a child
 * never outlives the orchestrator; `onExit` gets a bounded moment to close listeners first.
 */
export function serve<M extends Methods>(
  handlers: Handlers<M>,
  onExit: () => Promise<void> = async () => {},
): void {
  if (!process.send) throw new Error('started without an IPC channel: run it through the bench orchestrator');
  const send = (reply: Reply) => process.send?.(reply);
  process.on('message', (message: Call) => {
    const handler = handlers[message.method as keyof M];
    if (!handler) {
      send({ id: message.id, error: `no method ${message.method}` });
      return;
    }
    handler(message.params).then(
      (result) => send({ id: message.id, result }),
      (error: unknown) =>
        send({
          id: message.id,
          error: error instanceof Error ? (error.stack ?? error.message) : String(error),
        }),
    );
  });
  process.once('disconnect', () => {
    setTimeout(() => process.exit(0), 3000).unref();
    onExit().finally(() => process.exit(0));
  });
}

export interface ChildOptions {
  /** Extra node flags, e.g. --cpu-prof for the webhook. */
  readonly nodeFlags?: readonly string[];
}

const running = new Set<ChildHandle<Methods>>();

/**
 * The environment regroute's container image gives it: NODE_ENV=production, no proxy between processes that talk
 * over loopback, and no NODE_EXTRA_CA_CERTS from the host (regroute would load that bundle into every registry
 * client's trust store, and the image sets none).
 */
function childEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'https_proxy', 'NODE_EXTRA_CA_CERTS']) {
    delete env[name];
  }
  return env;
}

/** A child process of the bench, and calls to its methods, each with a time limit. */
export class ChildHandle<M extends Methods> {
  #nextId = 1;
  readonly #pending = new Map<
    number,
    { resolve: (value: unknown) => void; reject: (error: Error) => void }
  >();
  #stderr = '';
  #exited = false;

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr = (this.#stderr + chunk).slice(-STDERR_LIMIT);
    });
    child.on('message', (reply: Reply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if ('error' in reply) pending.reject(new Error(`${name}: ${reply.error}`));
      else pending.resolve(reply.result);
    });
    child.once('exit', (code, signal) => {
      this.#exited = true;
      running.delete(this as unknown as ChildHandle<Methods>);
      const error = new Error(`${name} exited (${code ?? signal}):\n${this.#stderr}`);
      for (const pending of this.#pending.values()) pending.reject(error);
      this.#pending.clear();
    });
  }

  /**
   * Forks `script`: compiled JavaScript with plain node, TypeScript under tsx. Its stdout is discarded; its stderr
   * is kept for error messages.
   */
  static start<M extends Methods>(name: string, script: URL, options: ChildOptions = {}): ChildHandle<M> {
    const loader = script.pathname.endsWith('.ts') ? ['--import', import.meta.resolve('tsx')] : [];
    const child = fork(script, [], {
      execArgv: [...loader, ...(options.nodeFlags ?? [])],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
      env: childEnvironment(),
    });
    const handle = new ChildHandle<M>(name, child);
    running.add(handle as unknown as ChildHandle<Methods>);
    return handle;
  }

  call<K extends keyof M & string>(
    method: K,
    params: M[K]['params'],
    timeoutMs: number,
  ): Promise<M[K]['result']> {
    if (this.#exited) return Promise.reject(new Error(`${this.name} has exited:\n${this.#stderr}`));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${this.name}: ${method} did not answer within ${timeoutMs} ms:\n${this.#stderr}`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as M[K]['result']);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      try {
        this.child.send({ id, method, params } satisfies Call);
      } catch (error) {
        this.#pending.get(id)?.reject(error instanceof Error ? error : new Error(String(error)));
        this.#pending.delete(id);
      }
    });
  }

  /** Closes the IPC channel (the child exits on it), then SIGTERM and SIGKILL if it lingers. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.#exited) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.connected) this.child.disconnect();
    const term = setTimeout(() => this.child.kill('SIGTERM'), graceMs);
    const kill = setTimeout(() => this.child.kill('SIGKILL'), graceMs + 2000);
    await exited;
    clearTimeout(term);
    clearTimeout(kill);
  }
}

/** Stops every child still running: the orchestrator's last step, on success, error and SIGINT alike. */
export async function stopAllChildren(): Promise<void> {
  await Promise.allSettled([...running].map((child) => child.stop(2000)));
}
