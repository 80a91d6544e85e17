/**
 * The shared profile store, decorated once on the root instance. The MongoDB client belongs to
 * whoever created it (server.ts or a test): this plugin never closes it.
 */
import fp from 'fastify-plugin';
import type { FastifyInstance } from 'fastify';
import type { Db } from 'mongodb';
import type { ApiConfig } from '../config';
import { ProfileStore } from '../../store';

declare module 'fastify' {
  interface FastifyInstance {
    profileStore: ProfileStore;
    profilesConfig: ApiConfig;
  }
}

export interface StorePluginOptions {
  db: Db;
  config: ApiConfig;
  collection?: string;
}

export default fp(
  async function storePlugin(app: FastifyInstance, options: StorePluginOptions) {
    // Indexes are the process's job at start (server.ts, through the one registry), not the app's.
    const store = new ProfileStore(options.db, options.collection);
    app.decorate('profileStore', store);
    app.decorate('profilesConfig', options.config);
  },
  { name: 'profile-store' },
);
