'use strict';
/**
 * ESM-only packages (execa's helpers) export only an `import` condition; jest resolves
 * require() with the `require` condition and would not find them. When the default
 * resolution fails, try the `import` condition: jest.config.js compiles those files to
 * CommonJS anyway.
 */
module.exports = (request, options) => {
  try {
    return options.defaultResolver(request, options);
  } catch (error) {
    if (request.startsWith('.') || request.startsWith('/')) throw error;
    return options.defaultResolver(request, { ...options, conditions: ['import', 'node', 'default'] });
  }
};
