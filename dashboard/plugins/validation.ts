/**
 * The shared TypeBox validator (platform/http/validation.ts): issues read `body.reason`,
 * `query.limit`, `params.id`. A control without a body means "no options", so
 * `curl -X POST .../pause` works without `-d '{}'`.
 */
import { createValidatorCompiler } from '../../platform/http/validation';

export const validatorCompiler = createValidatorCompiler({ absentBodyIsEmpty: true });
