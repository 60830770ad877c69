#!/usr/bin/env node
// Writes dist/train-config.schema.json (the JSON Schema of a train config file, for editors) from the
// zod schema in src/train/config-schema.ts, compiled to dist/ by tsc first (npm run build:ts).
import { writeFileSync, renameSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const { trainConfigJsonSchema, TRAIN_CONFIG_SCHEMA_FILE } = await import(join(dist, 'train', 'config-schema.js'));
const out = join(dist, TRAIN_CONFIG_SCHEMA_FILE);
writeFileSync(`${out}.tmp`, JSON.stringify(trainConfigJsonSchema(), null, 2) + '\n');
renameSync(`${out}.tmp`, out);
console.log(`wrote ${out}`);
