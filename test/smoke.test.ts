import { describe, expect, it } from 'vitest';
import { AppError, ERROR_MESSAGES, invalidField } from '../src/errors.js';

describe('error table', () => {
  it('gives every code a message', () => {
    for (const [code, message] of Object.entries(ERROR_MESSAGES)) {
      expect(message, code).toMatch(/\S/);
    }
  });

  it('names the field and the value it got', () => {
    const error = invalidField('lines', 'an integer from 1 to 1000', 0);
    expect(error).toBeInstanceOf(AppError);
    expect(error.message).toBe('Invalid input: lines must be an integer from 1 to 1000 (got 0)');
  });
});
