/**
 * Runs the sample shop: `node --import tsx examples/shop/server.ts --role canary --port 8082
 *   --version 1.1.0 [--latency checkout:200ms@1] [--errors checkout:0.05] [--cpu search:5ms]
 *   [--leak 1048576] [--load checkout:200ms@50rps] [--active-for 30s]`. The admin token for POST /admin/faults comes from SHOP_ADMIN_TOKEN.
 */
import { Command, InvalidArgumentError } from 'commander';
import { ValidationError } from '../../core/validation';
import { buildShopApp } from './app';
import { parseFaultFlags } from './faults';

const collect = (value: string, previous: string[] = []) => [...previous, value];
const port = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535)
    throw new InvalidArgumentError('must be a port number 0-65535');
  return n;
};

async function main(): Promise<void> {
  const program = new Command('shop')
    .requiredOption('--role <role>', 'baseline or canary')
    .option('--version <version>', 'version label for metrics', '1.0.0')
    .option('--host <host>', 'listen address', '127.0.0.1')
    .option('--port <port>', 'listen port', port, 0)
    .option('--latency <action:duration[@fraction]>', 'extra latency on an action', collect)
    .option('--errors <action:rate>', 'HTTP 500 rate on an action', collect)
    .option('--cpu <action:duration>', 'busy CPU per request of an action', collect)
    .option('--leak <bytesPerSecond>', 'memory retained per second')
    .option(
      '--load <action:duration@Nrps>',
      'extra latency on an action above N requests per second',
      collect,
    )
    .option('--active-for <duration>', 'the faults stop this long after start (a transient fault)')
    .parse(process.argv);
  const options = program.opts<{
    role: string;
    version: string;
    host: string;
    port: number;
    latency?: string[];
    errors?: string[];
    cpu?: string[];
    leak?: string;
    load?: string[];
    activeFor?: string;
  }>();
  if (options.role !== 'baseline' && options.role !== 'canary')
    throw new InvalidArgumentError('--role: must be baseline or canary');
  const faults = parseFaultFlags(options);
  const app = buildShopApp({
    role: options.role,
    version: options.version,
    faults,
    adminToken: process.env.SHOP_ADMIN_TOKEN,
  });
  const address = await app.listen({ host: options.host, port: options.port });
  console.log(
    JSON.stringify({ msg: 'shop listening', role: options.role, version: options.version, address, faults }),
  );
  const stop = () => void app.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((error: unknown) => {
  const message =
    error instanceof ValidationError || error instanceof InvalidArgumentError ? error.message : String(error);
  console.error(`error: ${message}`);
  process.exit(2);
});
