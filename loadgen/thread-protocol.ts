/** Messages between runLoad (main thread) and the engine threads. */
import type { EngineDelta } from './engine';

export type MainMessage =
  | { type: 'start'; startAt: number }
  | { type: 'collect'; seq: number }
  | { type: 'finish' }
  | { type: 'cancel' };

export type ThreadMessage =
  | { type: 'ready' }
  | { type: 'delta'; seq: number; delta: EngineDelta }
  | { type: 'done'; delta: EngineDelta }
  | { type: 'fatal'; message: string };
