/**
 * Test workflow: what a rollout would do to fan a probe out over the loadgen task queue. The
 * rollout workflow itself is not changed by the loadgen branch (see docs/loadgen.md).
 */
import { proxyActivities } from '@temporalio/workflow';
import type { ProbeActivities } from '../../../activities';
import type { ProbeRequest } from '../../../activities/ports';
import type { ProbeSummary } from '../../../rollout/types';
import { LOADGEN_TASK_QUEUE } from '../../../rollout/messages';

const { probe } = proxyActivities<ProbeActivities>({
  taskQueue: LOADGEN_TASK_QUEUE,
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: {
    maximumAttempts: 2,
    initialInterval: '200 milliseconds',
    nonRetryableErrorTypes: ['ValidationError'],
  },
});

export async function fanOutProbe(request: ProbeRequest, shards: number): Promise<ProbeSummary[]> {
  return Promise.all(
    Array.from({ length: shards }, (_, index) => probe({ ...request, shard: { index, count: shards } })),
  );
}
