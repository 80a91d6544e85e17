/**
 * The shared TypeBox validator (platform/http/validation.ts) with this API's field names: bodies
 * as `body.<field>`, query parameters and path parameters bare (`limit`, `user_id`).
 */
import { createValidatorCompiler } from '../../../platform/http/validation';

export const validatorCompiler = createValidatorCompiler({ fieldPrefixes: { querystring: '', params: '' } });
