/**
 * Entry of an engine worker thread: the main thread sends the plan in workerData and steers with
 * messages; this thread plays its share and answers with encoded deltas.
 */
import { performance } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';
import { Engine } from './engine';
import type { EnginePlan } from './options';
import type { MainMessage, ThreadMessage } from './thread-protocol';
import { messageOf } from '../core/errors';

const port = parentPort;
if (!port) throw new Error('engine-thread must run as a worker thread');
const { plan, threadIndex } = workerData as { plan: EnginePlan; threadIndex: number };

const send = (message: ThreadMessage) => port.postMessage(message);

try {
  const engine = new Engine(plan, threadIndex);
  let ending: Promise<void> | null = null;
  const end = (how: 'finish' | 'cancel'): Promise<void> => {
    // A cancel during the drain of a finish cuts what is still in flight: the drain then ends
    // at once and the finish sends the one `done`.
    if (ending) return how === 'cancel' ? engine.cancel() : ending;
    ending = (async () => {
      if (how === 'finish') await engine.finish(plan.drainMs);
      else await engine.cancel();
      send({ type: 'done', delta: engine.drain() });
    })();
    return ending;
  };
  port.on('message', (message: MainMessage) => {
    switch (message.type) {
      case 'start': {
        // Epoch milliseconds to this thread's performance clock.
        const startAt = message.startAt - performance.timeOrigin;
        engine.start(startAt, startAt + plan.durationMs);
        break;
      }
      case 'collect':
        send({ type: 'delta', seq: message.seq, delta: engine.drain() });
        break;
      case 'finish':
      case 'cancel':
        end(message.type).catch((error: unknown) => send({ type: 'fatal', message: messageOf(error) }));
        break;
    }
  });
  send({ type: 'ready' });
} catch (error) {
  send({ type: 'fatal', message: error instanceof Error ? (error.stack ?? error.message) : String(error) });
}
