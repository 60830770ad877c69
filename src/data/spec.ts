/**
 * Dataset specs: a dataset's name, its label names in id order, and the card text (description,
 * citation, homepage, license) written into the saved dataset's dataset_info.json.
 *
 * ED_easy_4 is built in. The other subsets of the same family (ED_hard_a..d, the 32-class ED) share
 * the file layout but not the label list, so `datasetSpec(name, labels)` builds a spec from an
 * explicit label list instead of us guessing one.
 */

import { DatasetError } from './errors.js';

export interface DatasetSpec {
  name: string;
  /** Label names; the index is the label id found in the CSV files. */
  labels: readonly string[];
  description: string;
  citation: string;
  homepage: string;
  license: string;
}

// EmpatheticDialogues and the paper that cut the ED_easy/ED_hard subsets out of it. Every ED_*
// subset is derived from EmpatheticDialogues, so all of them carry its license (CC BY-NC 4.0).
const ED_CITATION = `@inproceedings{rashkin-etal-2019-towards,
  title = {Towards Empathetic Open-domain Conversation Models: A New Benchmark and Dataset},
  author = {Rashkin, Hannah and Smith, Eric Michael and Li, Margaret and Boureau, Y-Lan},
  booktitle = {Proceedings of the 57th Annual Meeting of the Association for Computational Linguistics},
  year = {2019}
}
@inproceedings{suresh-ong-2021-negatives,
  title = {Not All Negatives are Equal: Label-Aware Contrastive Loss for Fine-grained Text Classification},
  author = {Suresh, Varsha and Ong, Desmond C.},
  booktitle = {Proceedings of the 2021 Conference on Empirical Methods in Natural Language Processing},
  year = {2021}
}`;
const ED_HOMEPAGE = 'https://github.com/facebookresearch/EmpatheticDialogues';
const ED_LICENSE = 'CC BY-NC 4.0';

function edSpec(name: string, labels: readonly string[]): DatasetSpec {
  return {
    name,
    labels,
    description:
      `${name}: situation sentences from EmpatheticDialogues (Rashkin et al., 2019), subset of ` +
      `Suresh & Ong (2021), labelled with ${labels.length} emotions (${labels.join(', ')}).`,
    citation: ED_CITATION,
    homepage: ED_HOMEPAGE,
    license: ED_LICENSE,
  };
}

/** Built-in datasets by name. */
export const BUILTIN_DATASETS: Readonly<Record<string, DatasetSpec>> = Object.freeze({
  ED_easy_4: edSpec('ED_easy_4', Object.freeze(['sad', 'joyful', 'angry', 'afraid'])),
});

/** Throws unless `labels` is a non-empty list of distinct, non-empty names. */
export function checkLabels(name: string, labels: readonly string[]): void {
  if (labels.length === 0) throw new DatasetError(`dataset ${name}: the label list is empty`);
  const seen = new Set<string>();
  for (const [i, l] of labels.entries()) {
    if (l.trim() === '' || l !== l.trim()) {
      throw new DatasetError(`dataset ${name}: label ${i} is ${JSON.stringify(l)}; names must be non-empty without surrounding spaces`);
    }
    if (seen.has(l)) throw new DatasetError(`dataset ${name}: label ${JSON.stringify(l)} appears twice in [${labels.join(', ')}]`);
    seen.add(l);
  }
}

/**
 * The spec for `name`: the built-in one, or one built from `labels` (names in id order).
 * A built-in name with a different label list is an error, not an override: the ids in the CSV
 * files would silently mean other emotions.
 */
export function datasetSpec(name: string, labels?: readonly string[]): DatasetSpec {
  const builtin = BUILTIN_DATASETS[name];
  if (labels === undefined || labels.length === 0) {
    if (builtin) return builtin;
    const known = Object.keys(BUILTIN_DATASETS).join(', ');
    throw new DatasetError(
      `unknown dataset "${name}"; known datasets: ${known}. For another dataset pass its label names in id order (--labels=name0,name1,...)`,
    );
  }
  checkLabels(name, labels);
  if (builtin) {
    const same = builtin.labels.length === labels.length && builtin.labels.every((l, i) => l === labels[i]);
    if (!same) {
      throw new DatasetError(
        `dataset ${name} is built in with labels [${builtin.labels.join(', ')}], got [${labels.join(', ')}]; ` +
          `use another dataset name for a different label list`,
      );
    }
    return builtin;
  }
  const spec = /^ED(_|$)/.test(name)
    ? edSpec(name, [...labels])
    : { name, labels: [...labels], description: `${name}: ${labels.length} classes (${labels.join(', ')}).`, citation: '', homepage: '', license: '' };
  return spec;
}
