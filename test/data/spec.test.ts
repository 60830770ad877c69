import { describe, expect, it } from 'vitest';
import { BUILTIN_DATASETS, DatasetError, datasetSpec } from '../../src/data/index.js';

describe('datasetSpec', () => {
  it('returns the built-in ED_easy_4 with ids sad=0, joyful=1, angry=2, afraid=3', () => {
    const s = datasetSpec('ED_easy_4');
    expect(s.name).toBe('ED_easy_4');
    expect([...s.labels]).toEqual(['sad', 'joyful', 'angry', 'afraid']);
    expect(s.license).toBe('CC BY-NC 4.0');
    expect(s).toBe(BUILTIN_DATASETS.ED_easy_4);
  });

  it('accepts the built-in label list restated', () => {
    expect(datasetSpec('ED_easy_4', ['sad', 'joyful', 'angry', 'afraid'])).toBe(BUILTIN_DATASETS.ED_easy_4);
  });

  it('builds a spec from labels for another ED subset, with the ED license', () => {
    const s = datasetSpec('ED_hard_a', ['anxious', 'apprehensive', 'afraid', 'terrified']);
    expect([...s.labels]).toEqual(['anxious', 'apprehensive', 'afraid', 'terrified']);
    expect(s.license).toBe('CC BY-NC 4.0');
    expect(s.description).toContain('ED_hard_a');
  });

  it('builds a spec for a non-ED dataset with empty card text', () => {
    const s = datasetSpec('my_set', ['no', 'yes']);
    expect(s.license).toBe('');
    expect([...s.labels]).toEqual(['no', 'yes']);
  });

  it('rejects an unknown name without labels, listing the known names', () => {
    expect(() => datasetSpec('ED_hard_a')).toThrow(DatasetError);
    expect(() => datasetSpec('ED_hard_a')).toThrow(/unknown dataset "ED_hard_a"; known datasets: ED_easy_4.*--labels/);
  });

  it('rejects a different label list under a built-in name', () => {
    expect(() => datasetSpec('ED_easy_4', ['joyful', 'sad', 'angry', 'afraid'])).toThrow(/built in with labels \[sad, joyful, angry, afraid\]/);
  });

  it('rejects duplicate or blank label names', () => {
    expect(() => datasetSpec('x', ['a', 'b', 'a'])).toThrow(/"a" appears twice/);
    expect(() => datasetSpec('x', ['a', ' '])).toThrow(/label 1/);
  });
});
