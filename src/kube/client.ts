// The CoreV1 API client: kubeconfig endpoint and auth, a deadline on every request, all cancelled at shutdown.
import {
  type Configuration,
  CoreV1Api,
  createConfiguration,
  KubeConfig,
  type Middleware,
  ServerConfiguration,
} from '@kubernetes/client-node';

/**
 * Built like `KubeConfig.makeApiClient`, plus a signal on each request: client-node sets no timeout, and one
 * request hanging on a half-open connection would stall every later pass.
 */
export function coreApi(kubeConfig: KubeConfig, timeoutMs: number, shutdown: AbortSignal): CoreV1Api {
  return apiClient(CoreV1Api, kubeConfig, timeoutMs, shutdown);
}

/** Any generated API group's client (CoreV1Api, AppsV1Api, BatchV1Api…), with the deadline of `coreApi`. */
export function apiClient<T>(
  Api: new (configuration: Configuration) => T,
  kubeConfig: KubeConfig,
  timeoutMs: number,
  shutdown: AbortSignal,
): T {
  const cluster = kubeConfig.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig names no current cluster');
  const deadline: Middleware = {
    pre: async (context) => {
      context.setSignal(AbortSignal.any([shutdown, AbortSignal.timeout(timeoutMs)]));
      return context;
    },
    post: async (response) => response,
  };
  return new Api(
    createConfiguration({
      baseServer: new ServerConfiguration(cluster.server, {}),
      authMethods: { default: kubeConfig },
      promiseMiddleware: [deadline],
    }),
  );
}

/** In a pod, its service account; elsewhere KUBECONFIG or ~/.kube/config, as kubectl would use. */
export function defaultKubeConfig(): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  return kubeConfig;
}
