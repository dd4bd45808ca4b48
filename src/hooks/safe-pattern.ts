// Shared by the hook layer and the process core (readiness patterns); it lives beside errors.ts.
export * from '../safe-pattern.js';
