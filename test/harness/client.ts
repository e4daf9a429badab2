// The harness's own small registry client: trusts the harness CA and answers Basic and Bearer challenges.
import { Agent, type Dispatcher, request } from 'undici';

export interface Credentials {
  username: string;
  password: string;
}

/** Anything the harness can talk to as a registry: a registry, a fault proxy in front of one. */
export interface RegistryEndpoint {
  url: string;
  dispatcher: Dispatcher;
  credentials?: Credentials;
}

export interface HarnessResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An undici Agent that trusts the harness CA (and nothing else). */
export function harnessAgent(caPem: string, options: Agent.Options = {}): Agent {
  return new Agent({ ...options, connect: { ca: caPem, ...options.connect } });
}

export function basicAuthorization({ username, password }: Credentials): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

export function header(headers: HarnessResponse['headers'], name: string): string | undefined {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/** Just enough of RFC 7235 for the challenges distribution sends: a scheme and quoted parameters. */
export function parseChallenge(value: string): { scheme: string; params: Record<string, string> } {
  const [scheme = '', rest = ''] = value.trim().split(/\s+(.*)/s);
  const params: Record<string, string> = {};
  for (const match of rest.matchAll(/([A-Za-z_]+)="([^"]*)"/g)) {
    const [, key, paramValue] = match;
    if (key !== undefined && paramValue !== undefined) params[key.toLowerCase()] = paramValue;
  }
  return { scheme: scheme.toLowerCase(), params };
}

interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer;
  /** Token scope asked for when the registry answers with a Bearer challenge. */
  scope?: string;
}

/** Sends a request, and once more with credentials when the registry challenges it. */
export async function registryRequest(
  endpoint: RegistryEndpoint,
  method: Dispatcher.HttpMethod,
  pathOrUrl: string,
  options: RequestOptions = {},
): Promise<HarnessResponse> {
  const url = new URL(pathOrUrl, endpoint.url).toString();
  const send = async (authorization?: string): Promise<HarnessResponse> => {
    const headers = { ...options.headers, ...(authorization ? { authorization } : {}) };
    const response = await request(url, {
      method,
      headers,
      body: options.body,
      dispatcher: endpoint.dispatcher,
      signal: AbortSignal.timeout(15_000),
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { statusCode: response.statusCode, headers: response.headers, body };
  };
  const first = await send();
  const challengeHeader = first.statusCode === 401 ? header(first.headers, 'www-authenticate') : undefined;
  if (challengeHeader === undefined) return first;
  const challenge = parseChallenge(challengeHeader);
  if (challenge.scheme === 'basic') {
    return endpoint.credentials ? send(basicAuthorization(endpoint.credentials)) : first;
  }
  if (challenge.scheme === 'bearer' && challenge.params.realm !== undefined) {
    const token = await fetchToken(endpoint, challenge.params.realm, {
      service: challenge.params.service,
      scope: options.scope ?? challenge.params.scope,
    });
    return send(`Bearer ${token}`);
  }
  return first;
}

/** GET realm?service=…&scope=… with Basic credentials, as distribution's own client does. */
export async function fetchToken(
  endpoint: Pick<RegistryEndpoint, 'dispatcher' | 'credentials'>,
  realm: string,
  { service, scope }: { service?: string | undefined; scope?: string | undefined },
): Promise<string> {
  const url = new URL(realm);
  if (service !== undefined) url.searchParams.set('service', service);
  for (const one of scope?.split(' ') ?? []) if (one !== '') url.searchParams.append('scope', one);
  const headers: Record<string, string> = {};
  if (endpoint.credentials) {
    url.searchParams.set('account', endpoint.credentials.username);
    headers.authorization = basicAuthorization(endpoint.credentials);
  }
  const response = await request(url, { headers, dispatcher: endpoint.dispatcher });
  const text = await response.body.text();
  if (response.statusCode !== 200) {
    throw new Error(`token request to ${url.origin}${url.pathname} failed: ${response.statusCode} ${text}`);
  }
  const json = JSON.parse(text) as { token?: string; access_token?: string };
  const token = json.access_token ?? json.token;
  if (token === undefined) throw new Error('token response carries neither token nor access_token');
  return token;
}
