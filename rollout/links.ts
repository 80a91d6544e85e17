/**
 * Where people look at one rollout: its dashboard page and its workflow in the Temporal UI.
 * The spec's `links` hold base URLs (e.g. `https://canary.example.com`,
 * `https://temporal.example.com`); alerts and the dashboard build the same deep links from them.
 */

export interface RolloutLinks {
  dashboard?: string;
  temporalUi?: string;
}

/** The dashboard's page of one rollout, relative to the dashboard's root. */
export function dashboardPath(rolloutId: string): string {
  return `/rollouts/${encodeURIComponent(rolloutId)}`;
}

/** The workflow page of the Temporal Web UI (v2 routes); a base that already names a namespace keeps it. */
export function temporalWorkflowUrl(baseUrl: string, namespace: string, workflowId: string): string {
  const base = baseUrl.replace(/\/+$/, '');
  const scoped = /\/namespaces\/[^/]+$/.test(base)
    ? base
    : `${base}/namespaces/${encodeURIComponent(namespace)}`;
  return `${scoped}/workflows/${encodeURIComponent(workflowId)}`;
}

export function rolloutLinks(
  bases: { dashboardUrl?: string; temporalUiUrl?: string },
  rolloutId: string,
  namespace = 'default',
): RolloutLinks {
  const links: RolloutLinks = {};
  if (bases.dashboardUrl)
    links.dashboard = `${bases.dashboardUrl.replace(/\/+$/, '')}${dashboardPath(rolloutId)}`;
  if (bases.temporalUiUrl) links.temporalUi = temporalWorkflowUrl(bases.temporalUiUrl, namespace, rolloutId);
  return links;
}
