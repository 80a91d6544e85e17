/**
 * The controller's rules for one CanaryRollout, as properties over every view it can see.
 */
import fc from 'fast-check';
import { planReconcile, type ControllerView } from '../../controller/plan';

const views: fc.Arbitrary<ControllerView> = fc.record({
  generation: fc.integer({ min: 1, max: 50 }),
  deleting: fc.boolean(),
  hasFinalizer: fc.boolean(),
  paused: fc.boolean(),
  wantedSpecHash: fc.option(fc.constantFrom('a', 'b'), { nil: undefined }),
  promoteRequested: fc.boolean(),
  rollbackRequested: fc.option(fc.constantFrom('', 'checkout errors'), { nil: undefined }),
  status: fc.record(
    {
      rolloutId: fc.constantFrom('rollout-web-1', 'rollout-web-2'),
      specHash: fc.constantFrom('a', 'b'),
      pausedBySpec: fc.boolean(),
    },
    { requiredKeys: [] },
  ),
  workflow: fc.option(
    fc.record({
      running: fc.boolean(),
      phase: fc.constantFrom(
        'probing',
        'progressing',
        'paused',
        'promoted',
        'rolled_back',
        'aborted',
        undefined,
      ),
    }),
    { nil: undefined },
  ),
});

const running = (view: ControllerView) => view.workflow?.running === true;
/** Running and not yet decided: a promoted or rolled-back workflow is only finishing. */
const deciding = (view: ControllerView) =>
  running(view) && !['promoted', 'rolled_back', 'aborted'].includes(view.workflow?.phase ?? '');

describe('planReconcile', () => {
  test('a deleted resource is let go only once no rollout of it runs, and a running one is rolled back', () => {
    fc.assert(
      fc.property(views, (view) => {
        const actions = planReconcile({ ...view, deleting: true });
        if (!view.hasFinalizer) return expect(actions).toEqual([]);
        if (running(view) && !deciding(view)) return expect(actions).toEqual([]);
        if (running(view))
          expect(actions).toEqual([
            { kind: 'signal', signal: 'rollback', reason: 'the CanaryRollout was deleted' },
          ]);
        else expect(actions).toEqual([{ kind: 'remove-finalizer' }]);
      }),
    );
  });

  test('nothing starts before the finalizer is in place', () => {
    fc.assert(
      fc.property(views, (view) => {
        const actions = planReconcile({ ...view, deleting: false, hasFinalizer: false });
        expect(actions).toEqual([{ kind: 'add-finalizer' }]);
      }),
    );
  });

  test('a new spec starts exactly one workflow, never while the previous one still runs', () => {
    fc.assert(
      fc.property(views, (view) => {
        const actions = planReconcile({ ...view, deleting: false, hasFinalizer: true });
        const starts = actions.filter((action) => action.kind === 'start');
        expect(starts.length).toBeLessThanOrEqual(1);
        if (starts.length === 1) {
          expect(running(view)).toBe(false);
          expect(view.wantedSpecHash).not.toBe(view.status.specHash);
          expect(actions).toHaveLength(1);
        }
        const isNew = view.wantedSpecHash !== undefined && view.wantedSpecHash !== view.status.specHash;
        if (isNew && deciding(view))
          expect(actions).toEqual([expect.objectContaining({ kind: 'signal', signal: 'rollback' })]);
        if (isNew && running(view) && !deciding(view)) expect(actions).toEqual([]);
        if (!isNew) expect(starts).toEqual([]);
      }),
    );
  });

  test('the same view planned again (the signal already sent) asks for nothing more than before', () => {
    fc.assert(
      fc.property(views, (view) => {
        const settled: ControllerView = {
          ...view,
          deleting: false,
          hasFinalizer: true,
          promoteRequested: false,
          rollbackRequested: undefined,
          wantedSpecHash: view.status.specHash,
          workflow: view.workflow && {
            ...view.workflow,
            phase: view.paused
              ? 'paused'
              : view.workflow.phase === 'paused' && view.status.pausedBySpec
                ? 'progressing'
                : view.workflow.phase,
          },
        };
        expect(planReconcile(settled)).toEqual([]);
      }),
    );
  });

  test('spec.paused=false resumes only a pause that spec.paused made', () => {
    const base: ControllerView = {
      generation: 3,
      deleting: false,
      hasFinalizer: true,
      paused: false,
      wantedSpecHash: 'a',
      promoteRequested: false,
      rollbackRequested: undefined,
      status: { rolloutId: 'rollout-web-1', specHash: 'a', pausedBySpec: false },
      workflow: { running: true, phase: 'paused' },
    };
    expect(planReconcile(base)).toEqual([]);
    expect(planReconcile({ ...base, status: { ...base.status, pausedBySpec: true } })).toEqual([
      { kind: 'signal', signal: 'resume', reason: 'spec.paused is false' },
    ]);
  });

  test('annotations act once on a running rollout and are always cleared', () => {
    fc.assert(
      fc.property(views, (view) => {
        const actions = planReconcile({
          ...view,
          deleting: false,
          hasFinalizer: true,
          wantedSpecHash: view.status.specHash,
        });
        const clears = actions.filter((action) => action.kind === 'clear-annotation');
        expect(clears.length).toBe(
          Number(view.promoteRequested) + Number(view.rollbackRequested !== undefined),
        );
        const signals = actions.filter(
          (action) =>
            action.kind === 'signal' && (action.signal === 'promote' || action.signal === 'rollback'),
        );
        expect(signals.length).toBe(
          deciding(view) && (view.promoteRequested || view.rollbackRequested !== undefined) ? 1 : 0,
        );
      }),
    );
  });
});
