/**
 * The rollout spec as people write it: a YAML (or JSON) document shaped like an Argo Rollouts
 * or Flagger resource. Field errors name the path in the document (`spec.policy.stepUp`).
 */
import { parseDocument } from 'yaml';
import { parseRolloutSpec, type RolloutSpec } from './spec';
import { FieldReader, isPlainObject, ValidationError, type FieldIssue } from '../core/validation';

export const API_VERSION = 'canary.dev/v1';
export const KIND = 'Rollout';

const SERVICE_FIELDS = ['service', 'version'];

/** Maps a field of the flat spec to where it sits in the document. */
function documentField(field: string): string {
  const head = field.split(/[.[]/)[0] ?? field;
  const section = SERVICE_FIELDS.includes(head) ? 'metadata' : 'spec';
  // `[""]` (an empty key) attaches without a dot.
  return field.startsWith('[') ? `${section}${field}` : `${section}.${field}`;
}

/** Rewrites issues that name flat-spec fields (components' validators) to document paths. */
export function inDocumentTerms(error: ValidationError): ValidationError {
  return new ValidationError(
    error.issues.map((issue) => ({ field: documentField(issue.field), rule: issue.rule })),
  );
}

export function parseRolloutDocument(text: string, source = 'rollout spec'): RolloutSpec {
  const document = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new ValidationError(
      document.errors.map((error) => ({
        field: source,
        rule: `is not valid YAML: ${error.message.split('\n')[0] ?? error.message}`,
      })),
    );
  }
  let value: unknown;
  try {
    value = document.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // The yaml package refuses alias bombs (and similar) while converting, not while parsing.
    throw new ValidationError([{ field: source, rule: `is not usable YAML: ${(error as Error).message}` }]);
  }
  return rolloutSpecFromDocument(value);
}

export function rolloutSpecFromDocument(input: unknown): RolloutSpec {
  const r = new FieldReader();
  const root = r.object(input, 'document');
  if (!root) throw new ValidationError(r.issues);
  r.onlyKeys(root, ['apiVersion', 'kind', 'metadata', 'spec'], '');
  if (root.apiVersion !== API_VERSION) r.fail('apiVersion', `must be ${API_VERSION}`);
  if (root.kind !== KIND) r.fail('kind', `must be ${KIND}`);
  const metadata = r.object(root.metadata, 'metadata');
  const spec = r.object(root.spec, 'spec');
  if (metadata) r.onlyKeys(metadata, [...SERVICE_FIELDS, 'labels', 'annotations'], 'metadata');
  if (spec && ('service' in spec || 'version' in spec))
    r.fail('spec', 'service and version belong in metadata');
  const issues: FieldIssue[] = [...r.issues];
  try {
    const flat = {
      ...(isPlainObject(spec) ? spec : {}),
      service: metadata?.service,
      version: metadata?.version,
    };
    const parsed = parseRolloutSpec(flat);
    if (issues.length === 0) return parsed;
  } catch (error) {
    if (!(error instanceof ValidationError)) throw error;
    for (const issue of error.issues) {
      if (
        !issues.some((existing) => existing.field === documentField(issue.field) || existing.field === 'spec')
      ) {
        issues.push({
          field: documentField(issue.field),
          rule: issue.rule.replace(/\b(policy\.\w+)/g, 'spec.$1'),
        });
      }
    }
  }
  throw new ValidationError(issues);
}
