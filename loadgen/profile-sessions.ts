/**
 * The one place where the traffic generator meets the profiles component: profiles (from the
 * store by id or criteria, or from a file) and the action ontology become the engine's session
 * plans. Every request is rendered here, once, before the run; a profile whose action the
 * ontology does not know, or whose data does not fit it, fails here with the field named.
 */
import { readFileSync } from 'node:fs';
import type { Db } from 'mongodb';
import { parseCriteria } from '../profiles/criteria';
import { defaultOntology, loadOntology, renderRequest, type Ontology } from '../profiles/ontology';
import { parseProfile, type Profile } from '../profiles/profile-schema';
import { StoreProfileSource } from '../profiles/profile-source';
import { ProfileStore } from '../profiles/store';
import { isPlainObject, ValidationError, type FieldIssue, type Json } from '../core/validation';
import type { RequestStep, SessionPlan } from './options';

export { defaultOntology, loadOntology, type Ontology };

/** Profile ids `canary loadgen --profiles a,b,c` accepts as a comma-separated list. */
export const PROFILE_ID_LIST = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}(,[A-Za-z0-9][A-Za-z0-9._:@-]{0,127})*$/;

/** What the engine needs of a profile. */
export type ReplayableProfile = Pick<Profile, 'user_id' | 'behavioral_patterns'> &
  Partial<Pick<Profile, 'device_type'>>;

/** A user agent per device type, so a target's device-specific paths see their share of users. */
const USER_AGENTS: Record<string, string> = {
  mobile: 'Mozilla/5.0 (Linux; Android 14; Pixel 8) canary-loadgen/1 mobile',
  tablet: 'Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) canary-loadgen/1 tablet',
  desktop: 'Mozilla/5.0 (X11; Linux x86_64) canary-loadgen/1 desktop',
  bot: 'canary-loadgen/1 bot',
  tv: 'Mozilla/5.0 (SMART-TV; Linux) canary-loadgen/1 tv',
  wearable: 'Mozilla/5.0 (Linux; Wear OS 4) canary-loadgen/1 wearable',
};

/**
 * Renders every profile entry through the ontology. Gaps are kept as recorded, measured from the
 * session's first entry. Throws one ValidationError naming each bad entry, e.g.
 * `profiles[u42].behavioral_patterns[3].action: must be an action of ontology shop@1.0.0 (...)`.
 */
export function sessionsFromProfiles(
  profiles: readonly ReplayableProfile[],
  ontology: Ontology,
  field = 'profiles',
): SessionPlan[] {
  const issues: FieldIssue[] = [];
  const sessions = profiles.map((profile) => {
    const first = profile.behavioral_patterns[0]?.timestamp ?? 0;
    const steps: RequestStep[] = [];
    profile.behavioral_patterns.forEach((pattern, index) => {
      const where = `${field}[${profile.user_id}].behavioral_patterns[${index}]`;
      try {
        const rendered = renderRequest(ontology, pattern.action, pattern.data ?? {});
        const headers: string[] = [];
        for (const [name, value] of Object.entries(rendered.headers)) headers.push(name.toLowerCase(), value);
        steps.push({
          action: rendered.action,
          method: rendered.method,
          path: rendered.path,
          headers,
          ...(rendered.body !== undefined ? { body: rendered.body } : {}),
          expect: {
            status: [...rendered.expect.status],
            ...(rendered.expect.json ? { json: rendered.expect.json } : {}),
          },
          offsetMs: Math.max(0, pattern.timestamp - first),
        });
      } catch (error) {
        if (!(error instanceof ValidationError)) throw error;
        for (const issue of error.issues) issues.push({ field: `${where}.${issue.field}`, rule: issue.rule });
      }
    });
    if (profile.behavioral_patterns.length === 0)
      issues.push({ field: `${field}[${profile.user_id}]`, rule: 'has no behavioral_patterns' });
    const agent = USER_AGENTS[profile.device_type ?? ''] ?? 'canary-loadgen/1';
    return { id: profile.user_id, steps, headers: ['user-agent', agent] };
  });
  if (issues.length > 0) throw new ValidationError(issues.slice(0, 50));
  return sessions;
}

/** Profiles by user_id, in the order given; every unknown id is named. */
export async function profilesById(db: Db, ids: readonly string[], field = 'profiles'): Promise<Profile[]> {
  if (ids.length === 0) throw new ValidationError([{ field, rule: 'must name at least one profile id' }]);
  const unique = [...new Set(ids)];
  const found = (await new ProfileStore(db).getMany(unique)) as Profile[];
  const known = new Set(found.map((profile) => profile.user_id));
  const unknown = unique.filter((id) => !known.has(id));
  if (unknown.length > 0)
    throw new ValidationError([
      {
        field,
        rule: `name profiles that are not in the store: ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ` and ${unknown.length - 20} more` : ''}`,
      },
    ]);
  return found;
}

/**
 * A reproducible stratified sample of the profiles matching `criteria` (the profiles
 * component's criteria language and sampler). No match is an error, not an empty run.
 */
export async function profilesByCriteria(
  db: Db,
  criteria: Record<string, Json>,
  options: { sampleSize: number; seed: number; maxPopulation?: number },
  field = 'criteria',
): Promise<Profile[]> {
  const compiled = parseCriteria(criteria, field);
  const store = new ProfileStore(db);
  // The rollout's source (and its population cap, DEFAULT_MAX_POPULATION unless given), so the
  // same criteria sample the same profiles, or fail the same way, here and in a rollout.
  const source = new StoreProfileSource(
    store,
    options.maxPopulation !== undefined ? { maxPopulation: options.maxPopulation } : {},
  );
  const sample = await source.sample(compiled, options.sampleSize, options.seed);
  if (sample.userIds.length === 0)
    throw new ValidationError([{ field, rule: 'match no profiles in the store' }]);
  return (await store.getMany(sample.userIds)) as Profile[];
}

/**
 * Profiles from a file: a JSON array or object, or NDJSON (one profile per line), each checked
 * against the profile schema and the ontology like a write to the store.
 */
export function profilesFromFile(file: string, ontology: Ontology, field = 'profiles'): Profile[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ValidationError([{ field, rule: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  let documents: unknown[];
  try {
    const parsed: unknown = JSON.parse(text);
    documents = Array.isArray(parsed)
      ? parsed
      : isPlainObject(parsed) && Array.isArray(parsed.profiles)
        ? parsed.profiles
        : [parsed];
  } catch {
    const lines = text.split('\n').filter((line) => line.trim() !== '');
    documents = [];
    for (const [index, line] of lines.entries()) {
      try {
        documents.push(JSON.parse(line));
      } catch {
        throw new ValidationError([
          { field, rule: `${file} is neither JSON nor NDJSON (line ${index + 1} does not parse)` },
        ]);
      }
    }
  }
  if (documents.length === 0) throw new ValidationError([{ field, rule: `${file} holds no profiles` }]);
  const issues: FieldIssue[] = [];
  const profiles: Profile[] = [];
  documents.forEach((document, index) => {
    try {
      profiles.push(parseProfile(document, ontology, undefined, `${field}[${index}]`));
    } catch (error) {
      if (!(error instanceof ValidationError)) throw error;
      issues.push(...error.issues);
    }
  });
  if (issues.length > 0) throw new ValidationError(issues.slice(0, 50));
  return profiles;
}
