"""Deterministic generator for the ``policy-qa`` suite (questions on Lumora's customer policy handbook).

Run ``python suites/policy-qa/make_data.py [OUT_DIR]`` from anywhere; it (re)writes, under OUT_DIR
(default: the folder of this script):

- knowledge/<topic>.md   the handbook as it stands today (version 3), one document per policy topic;
- history/handbook-v1.md, history/handbook-v2.md and history/CHANGES.md: the superseded versions and
  what changed, kept for the reader and never indexed (they are not under knowledge/);
- data/train.jsonl       questions answered from version 1 (the answers a team collected last quarter);
- data/eval.jsonl        other phrasings of the same questions, answered from version 3 (today's facts);
- fake/stale_oracle.jsonl a canned "model" that knows version 1 perfectly: what a fine-tune on the train
  split would say at best.

The facts themselves (values per version, the handbook's lines, the question phrasings) are in
facts.toml beside this script; this file only turns them into the suite.

Standard library only (tomllib; on Python 3.10, which has none, the tomli the harness installs there),
seeded with random.Random(SEED); the output is byte-identical across runs and does not depend on
PYTHONHASHSEED.

Every fact has a value in each version. Train and eval ask about the same facts with disjoint phrasings
(three train phrasings, two eval ones per fact), so no eval question repeats a train one, and the only
thing a model needs to get an eval item right is the fact as version 3 states it.

Answers are short: a number in digits without unit or currency sign (the question names the unit),
yes or no, a date as YYYY-MM-DD, or a short phrase the handbook uses.
"""

from __future__ import annotations

import functools
import json
import random
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the harness supports 3.10 and installs tomli there (pyproject.toml)
    import tomli as tomllib

SEED = 20260105
HERE = Path(__file__).resolve().parent
VERSIONS = ("v1", "v2", "v3")
EFFECTIVE = {"v1": "2025-11-01", "v2": "2025-12-01", "v3": "2026-01-01"}
TRAIN_VERSION, EVAL_VERSION = "v1", "v3"
N_EVAL = 150


@dataclass(frozen=True)
class Fact:
    doc: str  # the knowledge document that states it
    key: str
    kind: str  # number | yesno | date | phrase
    values: tuple[str, ...]  # one per version: v1, v2, v3
    statement: str | tuple[str, str]  # the handbook's line, {v} = the value; yes/no facts: (if yes, if no)
    train: tuple[str, ...]  # question phrasings used for train items only (three)
    eval: tuple[str, ...]  # question phrasings used for eval items only (two)

    def line(self, version: str) -> str:
        value = self.values[VERSIONS.index(version)]
        if isinstance(self.statement, tuple):
            return self.statement[0] if value == "yes" else self.statement[1]
        return self.statement.format(v=value)


FACTS_FILE = HERE / "facts.toml"  # the handbook's facts, one table each: edit them there


@functools.cache
def handbook() -> dict[str, Any]:
    """facts.toml, parsed. tomllib keeps the file's order, and that order is the output's (see its header)."""
    with FACTS_FILE.open("rb") as f:
        return tomllib.load(f)


def fill(text: str, names: dict[str, str]) -> str:
    """A statement or phrasing with the document's names put in; {v} and {thing} are filled later."""
    return text.format(**names, v="{v}", thing="{thing}") if names else text


def fact(doc: str, key: str, row: dict[str, Any], values: list[str], names: dict[str, str]) -> Fact:
    """One fact from its facts.toml table, for one document; `values` are its [v1, v2, v3] there."""
    where, raw = f"{FACTS_FILE.name}: {doc}.{key}", row["statement"]
    # A TOML number (30, not "30") would become a JSON number in the answers: refuse it rather than write it.
    if len(values) != len(VERSIONS) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{where}: values must be {len(VERSIONS)} strings, one per version ({', '.join(VERSIONS)})")
    if (row["kind"] == "yesno") != isinstance(raw, dict):
        raise ValueError(f"{where}: a yesno fact, and only a yesno fact, has statement.yes and statement.no")
    statement = (fill(raw["yes"], names), fill(raw["no"], names)) if isinstance(raw, dict) else fill(raw, names)
    train, eval_ = (tuple(fill(q, names) for q in row[split]) for split in ("train", "eval"))
    return Fact(doc, key, row["kind"], tuple(values), statement, train, eval_)


def build_facts() -> tuple[list[Fact], dict[str, str], dict[str, str]]:
    """Every fact, and each document's title and scope sentence, from facts.toml."""
    book = handbook()
    facts, titles, scopes = [], {}, {}
    for slug, cat in book["categories"].items():
        doc = f"returns-{slug}"
        titles[doc] = f"Returns and warranty: {cat['many']}"
        scopes[doc] = f"Applies to every Lumora {cat['one']}: {', '.join(cat['products'])}."
        names = {"one": cat["one"], "many": cat["many"]}
        facts += [fact(doc, key, row, row["values"][slug], names) for key, row in book["category_facts"].items()]
    for slug, plan in book["plans"].items():
        doc = f"plan-{slug}"
        titles[doc] = plan["name"]
        scopes[doc] = f"{plan['name']} is a monthly subscription for Lumora cameras and doorbells."
        names = {"plan": plan["name"]}
        facts += [fact(doc, key, row, row["values"][slug], names) for key, row in book["plan_facts"].items()]
    for doc, topic in book["topics"].items():
        titles[doc], scopes[doc] = topic["title"], topic["scope"]
        facts += [fact(doc, key, row, row["values"], {}) for key, row in topic["facts"].items()]
    return facts, titles, scopes


def product_things(doc: str) -> list[str]:
    """How a question may name a category's device: generically, or by one of its products."""
    for slug, cat in handbook()["categories"].items():
        if doc == f"returns-{slug}":
            one = cat["one"]
            named = [p if set(one.split()) & set(p.lower().split()) else f"{p} {one}" for p in cat["products"]]
            return [f"Lumora {name}" for name in [one, *named]]
    return []


def document(doc: str, version: str, facts: list[Fact], titles: dict[str, str], scopes: dict[str, str]) -> str:
    lines = [
        f"# {titles[doc]}",
        "",
        f"Lumora customer policy handbook, version {version[1:]}, effective {EFFECTIVE[version]}. {scopes[doc]}",
        "",
    ]
    lines += [f"- {fact.line(version)}" for fact in facts if fact.doc == doc]
    return "\n".join(lines) + "\n"


def make(out: Path) -> None:
    rng = random.Random(SEED)
    facts, titles, scopes = build_facts()
    docs = list(titles)

    def value(fact: Fact, version: str) -> str:
        return fact.values[VERSIONS.index(version)]

    def ask(fact: Fact, phrasing: str) -> str:
        if "{thing}" in phrasing:
            return phrasing.replace("{thing}", rng.choice(product_things(fact.doc)))
        return phrasing

    def record(fact: Fact, question: str, version: str) -> dict[str, object]:
        return {
            "question": question,
            "output": value(fact, version),
            "doc_ids": [fact.doc],
            "fact": f"{fact.doc}.{fact.key}",
            "kind": fact.kind,
            "version": version,
            "changed": value(fact, TRAIN_VERSION) != value(fact, EVAL_VERSION),
        }

    train = [record(f, ask(f, q), TRAIN_VERSION) for f in facts for q in f.train]
    second = set(rng.sample(range(len(facts)), N_EVAL - len(facts)))  # facts asked twice in eval
    eval_ = [record(f, ask(f, f.eval[0]), EVAL_VERSION) for f in facts]
    eval_ += [record(f, ask(f, f.eval[1]), EVAL_VERSION) for i, f in enumerate(facts) if i in second]
    rng.shuffle(train)
    rng.shuffle(eval_)
    train = [{"id": f"t{n:03d}", **r} for n, r in enumerate(train, start=1)]
    eval_ = [{"id": f"e{n:03d}", **r} for n, r in enumerate(eval_, start=1)]

    write(out / "data" / "train.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train))
    write(out / "data" / "eval.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in eval_))
    for doc in docs:
        write(out / "knowledge" / f"{doc}.md", document(doc, EVAL_VERSION, facts, titles, scopes))
    for version in VERSIONS[:-1]:
        header = f"<!-- superseded by version 3 ({EFFECTIVE['v3']}); not indexed: see README.md -->\n\n"
        body = "\n".join(document(doc, version, facts, titles, scopes) for doc in docs)
        write(out / "history" / f"handbook-{version}.md", header + body)
    write(out / "history" / "CHANGES.md", changes(facts))
    stale = [{"id": r["id"], "output": value(by_id(facts, str(r["fact"])), TRAIN_VERSION)} for r in eval_]
    write(out / "fake" / "stale_oracle.jsonl", "".join(json.dumps(r) + "\n" for r in stale))


def by_id(facts: list[Fact], fact_id: str) -> Fact:
    return next(f for f in facts if f"{f.doc}.{f.key}" == fact_id)


def changes(facts: list[Fact]) -> str:
    lines = ["# Handbook changes", ""]
    for old, new in zip(VERSIONS, VERSIONS[1:]):
        changed = [f for f in facts if f.values[VERSIONS.index(old)] != f.values[VERSIONS.index(new)]]
        lines += [f"## Version {new[1:]} (effective {EFFECTIVE[new]}): {len(changed)} changes", ""]
        for f in changed:
            lines.append(f"- `{f.doc}` {f.key}: {f.values[VERSIONS.index(old)]} -> {f.values[VERSIONS.index(new)]}")
        lines.append("")
    return "\n".join(lines)


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode("utf-8"))


if __name__ == "__main__":
    make(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
