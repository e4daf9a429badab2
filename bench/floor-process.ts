// The floor: a bare fastify HTTPS server that parses the same AdmissionReview body and answers a fixed response.
// Whatever regroute does beyond this (validation, routing, the patch, audit lines, metrics) is its own cost.
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import { BODY_LIMIT_BYTES } from '../src/server/app.js';
import { serve } from './ipc.js';
import type { FloorMethods } from './protocol.js';

const FIXED = {
  apiVersion: 'admission.k8s.io/v1',
  kind: 'AdmissionReview',
  response: { uid: '00000000-0000-0000-0000-000000000000', allowed: true },
};

let app: FastifyInstance | null = null;

serve<FloorMethods>(
  {
    async start({ certFile, keyFile }) {
      const [cert, key] = await Promise.all([readFile(certFile), readFile(keyFile)]);
      // The same server options as regroute's app that matter per request: body limit and TLS.
      const server = Fastify({
        bodyLimit: BODY_LIMIT_BYTES,
        https: { cert, key },
      }) as unknown as FastifyInstance;
      server.post('/mutate', async () => FIXED);
      await server.listen({ port: 0, host: '127.0.0.1' });
      app = server;
      return { port: (server.server.address() as AddressInfo).port };
    },
    async cpu() {
      const { user, system } = process.cpuUsage();
      return user + system;
    },
  },
  async () => {
    await app?.close();
  },
);
