"""Metrics and scoring: hand-computed values, agreement with the reference libraries (sacrebleu,
rouge-score, scikit-learn), bootstrap confidence intervals, answer extraction and the metric registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import sacrebleu
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score

from harness.config.settings import MetricSpec
from harness.scoring import scores as scoring
from harness.scoring.answers import Answer, Extractor, find_json, parse_json_output, strip_fences
from harness.scoring.metrics import (
    METRICS,
    MeanMetric,
    MetricContext,
    MetricInput,
    available_metrics,
    metric_class,
    register_metric,
)
from harness.scoring.metrics.builtin import Bleu, Chrf, MacroF1, normalize_text, token_f1
from harness.scoring.scores import ScoringSample, bootstrap_indices, score

BUILTIN = (
    "exact_match",
    "accuracy",
    "macro_f1",
    "token_f1",
    "bleu",
    "chrf",
    "rouge1",
    "rouge2",
    "rougeL",
    "json_valid",
    "json_schema",
    "regex_match",
    "output_length",
)
TEXT = Extractor("text")
JSON = Extractor("json")


def run(samples, names, extractor=TEXT, context=MetricContext(), bootstrap=0, seed=0):
    specs = [name if isinstance(name, MetricSpec) else MetricSpec(name) for name in names]
    scores, answers = score(samples, specs, extractor, context, bootstrap, seed)
    return scores, answers


def value(samples, name, **kwargs) -> float:
    scores, _ = run(samples, [name], **kwargs)
    key = name.key if isinstance(name, MetricSpec) else name
    return scores.summary[key].value


def pairs(rows):
    return [ScoringSample(output, reference) for output, reference in rows]


# --------------------------------------------------------------------------------------------------
# The fixed set of ~30 varied (output, reference) pairs used against the libraries.

PAIRS: list[tuple[str, str]] = [
    ("the cat sat on the mat", "the cat sat on the mat"),
    ("the cat lay on a mat", "the cat sat on the mat"),
    ("A quick brown fox jumps over the lazy dog.", "The quick brown fox jumped over the lazy dog."),
    ("", "an empty output scores zero"),
    ("something was said", ""),
    ("Paris", "Paris is the capital of France."),
    ("The capital of France is Paris.", "Paris"),
    ("42", "42"),
    ("The answer is 42.", "42"),
    ("running dogs were barking loudly", "the dog runs and barks loud"),
    (
        "Machine learning models generalize from training data to unseen examples.",
        "Models trained on data generalize to examples they have not seen.",
    ),
    ("completely unrelated words here", "nothing in common at all"),
    ("dog bites man", "man bites dog"),
    ("New York City is large; it has 8 million people!", "New York City has about 8 million people."),
    ("Hello, world!", "hello world"),
    ("Die Katze sitzt auf der Matte.", "Die Katze saß auf der Matte."),
    ("café naïve résumé", "cafe naive resume"),
    ("the the the the the the", "the cat is on the mat"),
    ("In 1969, Apollo 11 landed on the Moon.", "Apollo 11 landed on the Moon in July 1969."),
    (
        "Photosynthesis converts light energy into chemical energy stored in glucose.",
        "Plants use photosynthesis to turn light energy into chemical energy as glucose.",
    ),
    ("yes", "no"),
    ("Yes.", "yes"),
    ("The mitochondria is the powerhouse of the cell", "Mitochondria are the powerhouse of the cell"),
    ("a b c d e f g h", "a b c d e f g h i j"),
    ("a b c d e f g h i j k l", "a b c d e f g h"),
    ("Water boils at 100 degrees Celsius at sea level.", "At sea level, water boils at 100 °C."),
    ('He said "stop" (twice) - then left.', "He said stop twice and then left"),
    ("Line one\nline two\nline three", "line one line two line three"),
    ("The model's output; with, many: punctuation marks?!", "the models output with many punctuation marks"),
    ("Shakespeare wrote Hamlet around 1600", "Hamlet was written by William Shakespeare circa 1600"),
    ("  padded   with   spaces  ", "padded with spaces"),
]

# Token F1 of each pair, by hand: F1 = 2 * common / (answer tokens + reference tokens) after SQuAD
# normalization (articles, including the letter "a", and ASCII punctuation dropped; "°" kept). Shared tokens
# count as a multiset: pair 20 shares "energy" twice (7 of 10 and 12: 14/22), pair 26 "at" twice (7 of 9
# and 8: 14/17). Pair 18 is only articles: an empty answer against a non-empty reference is 0.
PAIRS_TOKEN_F1: list[float] = [
    1,
    3 / 4,
    6 / 7,
    0,
    0,
    1 / 3,
    1 / 3,
    1,
    1 / 2,
    0,  # 1-10
    10 / 21,
    0,
    1,
    7 / 9,
    1,
    5 / 6,
    0,
    0,
    14 / 15,
    7 / 11,  # 11-20
    0,
    1,
    4 / 5,
    7 / 8,
    7 / 9,
    14 / 17,
    12 / 13,
    1,
    1,
    6 / 13,  # 21-30
    1,  # 31
]
# Exact match after normalization: pairs 1, 8, 15, 22, 28, 29 and 31 (13 has the same words in another order).
PAIRS_EXACT: list[float] = [float(i in (1, 8, 15, 22, 28, 29, 31)) for i in range(1, 32)]

# Gold labels and predicted answers (classification); some predictions fall outside the gold label set.
LABELED: list[tuple[str, str]] = [  # (prediction, gold)
    ("positive", "positive"),
    ("Positive", "positive"),
    ("negative", "positive"),
    ("neutral", "positive"),
    ("negative", "negative"),
    (" NEGATIVE ", "negative"),
    ("positive", "negative"),
    ("neutral", "neutral"),
    ("neutral", "neutral"),
    ("mixed", "neutral"),  # not a gold label
    ("positive", "neutral"),
    ("angry", "angry"),
    ("negative", "angry"),
    ("I think positive", "angry"),  # not a gold label
    ("angry", "negative"),
    ("surprised", "surprised"),
    ("surprised", "surprised"),
    ("surprised", "positive"),
    ("", "surprised"),  # empty answer
    ("positive", "positive"),
    ("negative", "negative"),
    ("neutral", "negative"),
    ("angry", "angry"),
    ("neutral", "neutral"),
    ("positive", "surprised"),
    ("sarcastic", "positive"),  # not a gold label
    ("negative", "negative"),
    ("positive", "positive"),
    ("angry", "neutral"),
    ("surprised", "angry"),
]


def norm_label(text: str) -> str:
    return text.strip().casefold()


def labeled_samples() -> list[ScoringSample]:
    return [ScoringSample(pred, f"reference {i}", label=gold) for i, (pred, gold) in enumerate(LABELED)]


# --------------------------------------------------------------------------------------------------
# Registry


def test_all_builtins_are_registered():
    assert set(BUILTIN) <= set(available_metrics())
    for name in BUILTIN:
        assert metric_class(name).name == name


def test_unknown_metric_name_is_an_error():
    with pytest.raises(Exception, match="unknown metric 'bleuu'"):
        metric_class("bleuu")


def test_higher_is_better_flags():
    samples = pairs([("a b c", "a b c"), ("{}", "x")])
    context = MetricContext(schema={"type": "object"}, pattern=".*")
    scores, _ = run(samples, BUILTIN, context=context)
    for name in BUILTIN:
        expected = None if name == "output_length" else True
        assert scores.summary[name].higher_is_better is expected, name


# --------------------------------------------------------------------------------------------------
# Hand-computed values


def test_exact_match_hand_computed():
    samples = pairs(
        [
            ("The Cat!", "cat"),  # lowercase, drop "!" and article "the" -> "cat" == "cat": 1
            ("  a  dog ", "Dog."),  # -> "dog" == "dog": 1
            ("cats", "cat"),  # no stemming: 0
            ("An apple,  pie", "apple pie"),  # -> "apple pie" == "apple pie": 1
        ]
    )
    scores, _ = run(samples, ["exact_match"])
    assert scores.per_sample["exact_match"] == [1.0, 1.0, 0.0, 1.0]
    assert scores.summary["exact_match"].value == pytest.approx(3 / 4, abs=1e-12)  # 3 of 4


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat!", "cat"),
        ("HELLO   World", "hello world"),
        ("an apple a day", "apple day"),
        ("theatre anthem", "theatre anthem"),  # articles only as whole words
        ("  tabs\tand\nnewlines  ", "tabs and newlines"),
        ("it's 3.14, isn't it?", "its 314 isnt it"),
        ("", ""),
    ],
)
def test_normalize_text(text, expected):
    assert normalize_text(text) == expected


def test_accuracy_hand_computed_with_labels_and_reference_fallback():
    samples = [
        ScoringSample("Positive", "ignored", label="positive"),  # casefold: 1
        ScoringSample(" negative \n", "ignored", label="Negative"),  # strip + casefold: 1
        ScoringSample("neutral", "ignored", label="positive"),  # 0
        ScoringSample("positive.", "ignored", label="positive"),  # punctuation is kept for labels: 0
        ScoringSample("Paris", " paris "),  # no label -> the reference is the label: 1
    ]
    scores, _ = run(samples, ["accuracy"])
    assert scores.per_sample["accuracy"] == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert scores.summary["accuracy"].value == pytest.approx(3 / 5, abs=1e-12)


def test_macro_f1_hand_computed():
    # gold = a a b b c, pred = a b b b x
    # a: tp=1 fp=0 fn=1 -> F1 = 2*1/(2*1+0+1) = 2/3
    # b: tp=2 fp=1 fn=0 -> F1 = 4/(4+1)     = 4/5
    # c: tp=0 fp=0 fn=1 -> F1 = 0
    # x is not a gold label: a miss for c, no class of its own.  macro = (2/3 + 4/5 + 0)/3 = 22/45
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "x"]
    samples = [ScoringSample(p, "", label=g) for p, g in zip(pred, gold)]
    scores, _ = run(samples, ["macro_f1"])
    assert scores.summary["macro_f1"].value == pytest.approx(22 / 45, abs=1e-12)
    assert scores.per_sample["macro_f1"] == [None] * 5  # undefined per sample
    assert scores.summary["macro_f1"].n == 5


def test_token_f1_hand_computed():
    # 1) "the quick brown fox" vs "quick brown dog jumps": pred [quick brown fox], gold [quick brown dog jumps]
    #    common 2, P = 2/3, R = 2/4, F1 = 2PR/(P+R) = (2/3)/(7/6) = 4/7
    # 2) "x x y" vs "x y y": common = min(2,1) + min(1,2) = 2, P = R = 2/3, F1 = 2/3
    # 3) "" vs "": 0 (an empty output is no answer, and no answer never matches; token_f1() alone says 1)
    # 4) "" vs "x": 0
    # 5) "The." vs "an": both normalize to nothing, but the output said something -> 1
    # mean = (4/7 + 2/3 + 0 + 0 + 1)/5 = (12/21 + 14/21 + 21/21)/5 = 47/105
    samples = pairs(
        [("the quick brown fox", "quick brown dog jumps"), ("x x y", "x y y"), ("", ""), ("", "x"), ("The.", "an")]
    )
    scores, _ = run(samples, ["token_f1"])
    assert scores.per_sample["token_f1"] == pytest.approx([4 / 7, 2 / 3, 0.0, 0.0, 1.0], abs=1e-12)
    assert scores.summary["token_f1"].value == pytest.approx(47 / 105, abs=1e-12)


@pytest.mark.parametrize(
    ("answer", "reference", "expected"),
    [
        ("", "", 1.0),
        ("", "something", 0.0),
        ("something", "", 0.0),
        ("   ", "the", 1.0),  # both empty after normalization
        ("alpha beta", "gamma delta", 0.0),
        ("Alpha, BETA!", "alpha beta", 1.0),
    ],
)
def test_token_f1_edge_cases(answer, reference, expected):
    assert token_f1(answer, reference) == expected


def test_bleu_hand_computed():
    # 1) "a b c d e" vs "a b c d f": precisions 4/5, 3/4, 2/3, 1/2; BP = 1
    #    BLEU = 100 * (4/5 * 3/4 * 2/3 * 1/2)^(1/4) = 100 * 0.2^0.25
    # 2) "x y z w v" vs itself: 100
    # 3) "a b c d" vs "a b c d e f": precisions all 1, BP = exp(1 - 6/4) -> 100 * exp(-0.5)
    # corpus: matches/totals summed: 1-gram (4+5+4)/(5+5+4) = 13/14, 2-gram (3+4+3)/(4+4+3) = 10/11,
    #         3-gram (2+3+2)/(3+3+2) = 7/8, 4-gram (1+2+1)/(2+2+1) = 4/5; hyp len 14, ref len 16
    #         BP = exp(1 - 16/14); BLEU = 100 * BP * (13/14 * 10/11 * 7/8 * 4/5)^(1/4)
    samples = pairs([("a b c d e", "a b c d f"), ("x y z w v", "x y z w v"), ("a b c d", "a b c d e f")])
    scores, _ = run(samples, ["bleu"])
    assert scores.per_sample["bleu"] == pytest.approx([100 * 0.2**0.25, 100.0, 100 * math.exp(-0.5)], abs=1e-9)
    corpus = 100 * math.exp(1 - 16 / 14) * (13 / 14 * 10 / 11 * 7 / 8 * 4 / 5) ** 0.25
    assert scores.summary["bleu"].value == pytest.approx(corpus, abs=1e-9)
    assert scores.summary["bleu"].n == 3


def test_chrf_hand_computed():
    # chrF (char order 6, beta 2, spaces removed), averaging P and R over orders present in both.
    # "abc" vs "abd": 1-grams match 2 of 3 (P = R = 2/3), 2-grams 1 of 2 (1/2), 3-grams 0 of 1 (0);
    #   avg P = avg R = (2/3 + 1/2 + 0)/3 = 7/18; with P == R, F_beta = P -> 100 * 7/18
    # "xy" vs "xy": 100
    # corpus: 1-grams 4/5, 2-grams 2/3, 3-grams 0/1 -> (4/5 + 2/3 + 0)/3 = 22/45 -> 100 * 22/45
    samples = pairs([("abc", "abd"), ("xy", "xy")])
    scores, _ = run(samples, ["chrf"])
    assert scores.per_sample["chrf"] == pytest.approx([100 * 7 / 18, 100.0], abs=1e-9)
    assert scores.summary["chrf"].value == pytest.approx(100 * 22 / 45, abs=1e-9)


def test_rouge_hand_computed():
    # ref "the cat sat on the mat" (6 tokens), pred "the cat lay on a mat" (6 tokens)
    # rouge1: overlap the(1) cat on mat = 4 -> P = R = 4/6 -> F = 2/3
    # rouge2: ref bigrams {the cat, cat sat, sat on, on the, the mat}, pred {the cat, cat lay, lay on,
    #         on a, a mat}: overlap 1 -> F = 1/5
    # rougeL: LCS "the cat on mat" = 4 -> F = 2/3
    # ref "running dogs" vs pred "runs dog": stems run dog / run dog -> 1 for all three
    samples = pairs([("the cat lay on a mat", "the cat sat on the mat"), ("runs dog", "running dogs")])
    scores, _ = run(samples, ["rouge1", "rouge2", "rougeL"])
    assert scores.per_sample["rouge1"] == pytest.approx([2 / 3, 1.0], abs=1e-12)
    assert scores.per_sample["rouge2"] == pytest.approx([1 / 5, 1.0], abs=1e-12)
    assert scores.per_sample["rougeL"] == pytest.approx([2 / 3, 1.0], abs=1e-12)
    assert scores.summary["rouge1"].value == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)
    assert scores.summary["rouge2"].value == pytest.approx((1 / 5 + 1) / 2, abs=1e-12)
    assert scores.summary["rougeL"].value == pytest.approx((2 / 3 + 1) / 2, abs=1e-12)


def test_json_valid_hand_computed():
    samples = pairs(
        [
            ('{"a": 1}', ""),  # 1
            ('```json\n{"a": 1}\n```', ""),  # one fence around JSON: 1
            ('Answer: {"a": 1}', ""),  # prose around JSON is not valid JSON output: 0
            ("42", ""),  # any JSON value: 1
            ('{"a": 1', ""),  # truncated: 0
            ("", ""),  # 0
        ]
    )
    scores, _ = run(samples, ["json_valid"])
    assert scores.per_sample["json_valid"] == [1.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    assert scores.summary["json_valid"].value == pytest.approx(3 / 6, abs=1e-12)


def test_json_schema_hand_computed():
    schema = {
        "type": "object",
        "properties": {"category": {"enum": ["a", "b"]}},
        "required": ["category"],
    }
    samples = pairs(
        [
            ('{"category": "a"}', ""),  # 1
            ('{"category": "z"}', ""),  # not in enum: 0
            ("{}", ""),  # missing required: 0
            ("not json", ""),  # 0
            ('```\n{"category": "b", "extra": 1}\n```', ""),  # fenced, valid: 1
        ]
    )
    scores, _ = run(samples, ["json_schema"], context=MetricContext(schema=schema))
    assert scores.per_sample["json_schema"] == [1.0, 0.0, 0.0, 0.0, 1.0]
    assert scores.summary["json_schema"].value == pytest.approx(2 / 5, abs=1e-12)


def test_regex_match_hand_computed():
    samples = pairs([(" 42 \n", ""), ("42 apples", ""), ("x", ""), ("7", "")])
    # fullmatch of \d+ on the stripped output: 1, 0, 0, 1 -> 2/4
    scores, _ = run(samples, ["regex_match"], context=MetricContext(pattern=r"\d+"))
    assert scores.per_sample["regex_match"] == [1.0, 0.0, 0.0, 1.0]
    assert scores.summary["regex_match"].value == pytest.approx(0.5, abs=1e-12)
    # the pattern is applied with DOTALL: "." crosses newlines
    dotall, _ = run(pairs([("A\nmiddle\nB", "")]), ["regex_match"], context=MetricContext(pattern="A.*B"))
    assert dotall.per_sample["regex_match"] == [1.0]


def test_output_length_hand_computed():
    # whitespace words: 3, 0, 4 -> mean 7/3; the raw output is measured, not the extracted answer
    samples = pairs([("one two three", "x"), ("", "x"), ("  a\nb\tc  d ", "x")])
    scores, _ = run(samples, ["output_length"], extractor=Extractor("first_line"))
    assert scores.per_sample["output_length"] == [3.0, 0.0, 4.0]
    assert scores.summary["output_length"].value == pytest.approx(7 / 3, abs=1e-12)
    assert scores.summary["output_length"].higher_is_better is None


# --------------------------------------------------------------------------------------------------
# Against the libraries on the fixed set of pairs


def test_bleu_matches_sacrebleu():
    hyps, refs = [o.strip() for o, _ in PAIRS], [r.strip() for _, r in PAIRS]
    scores, _ = run(pairs(PAIRS), ["bleu"])
    assert scores.summary["bleu"].value == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score, abs=1e-6)
    expected = [sacrebleu.sentence_bleu(h, [r]).score for h, r in zip(hyps, refs)]
    assert scores.per_sample["bleu"] == pytest.approx(expected, abs=1e-6)
    assert len(set(np.round(expected, 6))) > 5  # the pairs are varied


def test_chrf_matches_sacrebleu():
    hyps, refs = [o.strip() for o, _ in PAIRS], [r.strip() for _, r in PAIRS]
    scores, _ = run(pairs(PAIRS), ["chrf"])
    assert scores.summary["chrf"].value == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs]).score, abs=1e-6)
    expected = [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(hyps, refs)]
    assert scores.per_sample["chrf"] == pytest.approx(expected, abs=1e-6)
    assert len(set(np.round(expected, 6))) > 5


def test_rouge_matches_rouge_score():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    expected = [scorer.score(r.strip(), o.strip()) for o, r in PAIRS]  # score(target, prediction)
    scores, _ = run(pairs(PAIRS), ["rouge1", "rouge2", "rougeL"])
    for kind in ("rouge1", "rouge2", "rougeL"):
        per_sample = [e[kind].fmeasure for e in expected]
        assert scores.per_sample[kind] == pytest.approx(per_sample, abs=1e-9), kind
        assert scores.summary[kind].value == pytest.approx(float(np.mean(per_sample)), abs=1e-9), kind
    assert len({round(e["rougeL"].fmeasure, 9) for e in expected}) > 5  # the pairs are varied


def test_rouge_types_are_scored_independently_of_order():
    alone = {kind: run(pairs(PAIRS), [kind])[0].per_sample[kind] for kind in ("rouge2", "rougeL")}
    together, _ = run(pairs(PAIRS), ["rougeL", "rouge1", "rouge2"])
    assert together.per_sample["rouge2"] == alone["rouge2"]
    assert together.per_sample["rougeL"] == alone["rougeL"]


def test_accuracy_matches_sklearn():
    gold = [norm_label(g) for _, g in LABELED]
    pred = [norm_label(p) for p, _ in LABELED]
    scores, _ = run(labeled_samples(), ["accuracy"])
    assert scores.summary["accuracy"].value == pytest.approx(accuracy_score(gold, pred), abs=1e-9)


def test_macro_f1_matches_sklearn():
    gold = [norm_label(g) for _, g in LABELED]
    pred = [norm_label(p) for p, _ in LABELED]
    expected = f1_score(gold, pred, labels=sorted(set(gold)), average="macro", zero_division=0)
    scores, _ = run(labeled_samples(), ["macro_f1"])
    assert scores.summary["macro_f1"].value == pytest.approx(expected, abs=1e-9)
    # and it is not the score over the union of gold and predicted labels
    union = f1_score(gold, pred, average="macro", zero_division=0)
    assert abs(union - expected) > 1e-3


def test_exact_match_and_token_f1_on_pairs_match_squad_definitions():
    scores, _ = run(pairs(PAIRS), ["exact_match", "token_f1"])
    assert scores.per_sample["exact_match"] == PAIRS_EXACT
    assert scores.per_sample["token_f1"] == pytest.approx(PAIRS_TOKEN_F1, abs=1e-12)
    # 7 of the 31 pairs match after normalization: the two identical ones, "Hello, world!" / "hello world",
    # "Yes." / "yes", the three-line output, the punctuated one, the padded one
    assert len(PAIRS) == 31
    assert scores.summary["exact_match"].value == pytest.approx(7 / 31, abs=1e-12)


# --------------------------------------------------------------------------------------------------
# Bootstrap resamples


def _inputs(rows, labels=None):
    labels = labels or [r for _, r in rows]
    return [MetricInput(o, o.strip(), r.strip(), label) for (o, r), label in zip(rows, labels)]


def test_macro_f1_resamples_match_sklearn():
    rows = [(p, "") for p, _ in LABELED]
    gold_labels = [g for _, g in LABELED]
    metric = MacroF1()
    stats = metric.stats(_inputs(rows, gold_labels), {})
    indices = np.random.default_rng(7).integers(0, len(LABELED), size=(6, len(LABELED)))
    # a resample with a single class, and one that leaves out several gold classes
    indices = np.vstack([indices, np.full(len(LABELED), 11), np.r_[np.arange(10), np.arange(10), np.arange(10)]])
    got = metric.aggregate_resamples(stats, indices)
    gold = [norm_label(g) for _, g in LABELED]
    pred = [norm_label(p) for p, _ in LABELED]
    for b, row in enumerate(indices):
        g, p = [gold[i] for i in row], [pred[i] for i in row]
        expected = f1_score(g, p, labels=sorted(set(g)), average="macro", zero_division=0)
        assert got[b] == pytest.approx(expected, abs=1e-9), b
    assert len(set(np.round(got, 9))) > 3


def test_mean_metric_resamples_are_means_of_resampled_values():
    scores_metric = metric_class("token_f1")()
    stats = scores_metric.stats(_inputs(PAIRS), {})
    indices = np.random.default_rng(3).integers(0, len(PAIRS), size=(5, len(PAIRS)))
    got = scores_metric.aggregate_resamples(stats, indices)
    values = PAIRS_TOKEN_F1
    for b, row in enumerate(indices):
        assert got[b] == pytest.approx(np.mean([values[i] for i in row]), abs=1e-12)


@pytest.mark.parametrize(("cls", "corpus"), [(Bleu, sacrebleu.corpus_bleu), (Chrf, sacrebleu.corpus_chrf)])
def test_sacrebleu_resamples_match_corpus_scores(cls, corpus):
    metric = cls()
    stats = metric.stats(_inputs(PAIRS), {})
    indices = np.random.default_rng(11).integers(0, len(PAIRS), size=(5, len(PAIRS)))
    got = metric.aggregate_resamples(stats, indices)
    hyps, refs = [o.strip() for o, _ in PAIRS], [r.strip() for _, r in PAIRS]
    for b, row in enumerate(indices):
        expected = corpus([hyps[i] for i in row], [[refs[i] for i in row]]).score
        assert got[b] == pytest.approx(expected, abs=1e-6), b
    assert len(set(np.round(got, 6))) > 1


# --------------------------------------------------------------------------------------------------
# Confidence intervals


TEXT_METRICS = ("exact_match", "token_f1", "bleu", "chrf", "rouge1", "rouge2", "rougeL", "output_length")
LABEL_METRICS = ("accuracy", "macro_f1")
ALL_TEXT = TEXT_METRICS + LABEL_METRICS


def _ci_samples() -> list[ScoringSample]:
    return [ScoringSample(o, r) for o, r in PAIRS[:30]]


def _ci_scores(bootstrap: int, seed: int):
    """Text metrics over the 30 pairs, label metrics over the 30 labeled samples (same n, same resamples)."""
    text, _ = run(_ci_samples(), TEXT_METRICS, bootstrap=bootstrap, seed=seed)
    labels, _ = run(labeled_samples(), LABEL_METRICS, bootstrap=bootstrap, seed=seed)
    return {**text.summary, **labels.summary}, {**text.per_sample, **labels.per_sample}


def test_confidence_intervals_contain_the_value():
    summary, _ = _ci_scores(500, 0)
    for name in ALL_TEXT:
        s = summary[name]
        assert s.ci_low is not None and s.ci_high is not None, name
        assert s.ci_low <= s.value <= s.ci_high, name
        assert s.ci_low < s.ci_high, name


def test_confidence_intervals_are_seeded():
    first, _ = _ci_scores(200, 1)
    again, _ = _ci_scores(200, 1)
    other, _ = _ci_scores(200, 2)
    assert first == again
    differ = [n for n in ALL_TEXT if (first[n].ci_low, first[n].ci_high) != (other[n].ci_low, other[n].ci_high)]
    assert len(differ) >= len(ALL_TEXT) // 2, differ
    for name in ALL_TEXT:  # the point estimate does not depend on the seed
        assert first[name].value == other[name].value


def test_confidence_interval_is_the_percentile_interval_of_shared_resamples():
    samples = _ci_samples()
    scores, _ = run(samples, ["token_f1"], bootstrap=300, seed=5)
    indices = bootstrap_indices(len(samples), 300, 5)
    values = np.array(PAIRS_TOKEN_F1[:30])
    low, high = np.percentile(values[indices].mean(axis=1), [2.5, 97.5])
    assert scores.summary["token_f1"].ci_low == pytest.approx(low, abs=1e-12)
    assert scores.summary["token_f1"].ci_high == pytest.approx(high, abs=1e-12)


def test_no_bootstrap_no_interval():
    """bootstrap = 0 turns off the resampled intervals; a proportion's Wilson interval needs no resampling."""
    summary, _ = _ci_scores(0, 0)
    for name in ALL_TEXT:
        if summary[name].interval == "wilson":
            assert 0 <= summary[name].ci_low <= summary[name].value <= summary[name].ci_high <= 1
        else:
            assert summary[name].ci_low is None and summary[name].ci_high is None and summary[name].interval is None
    assert {summary[name].interval for name in ALL_TEXT} == {"wilson", None}
    # one sample: nothing to resample
    one, _ = run([ScoringSample("three words here", "x")], ["output_length"], bootstrap=1000)
    assert one.summary["output_length"].value > 1 and one.summary["output_length"].ci_low is None
    single, _ = run(_ci_samples()[:1], ["exact_match"], bootstrap=1000)  # but one 0/1 answer has a Wilson interval
    assert (
        single.summary["exact_match"].interval == "wilson"
        and single.summary["exact_match"].ci_high > single.summary["exact_match"].ci_low
    )


def test_bootstrap_indices_shape_and_range():
    indices = bootstrap_indices(17, 40, 0)
    assert indices.shape == (40, 17)
    assert indices.min() >= 0 and indices.max() < 17
    assert bootstrap_indices(17, 0, 0) is None
    assert bootstrap_indices(1, 10, 0) is None
    assert np.array_equal(bootstrap_indices(17, 40, 3), bootstrap_indices(17, 40, 3))


def test_n_counts_and_summary_dict():
    summary, per_sample = _ci_scores(50, 0)
    for name in ALL_TEXT:
        assert summary[name].n == 30
        assert len(per_sample[name]) == 30
    d = summary["macro_f1"].to_dict()
    assert set(d) == {"value", "ci_low", "ci_high", "interval", "n", "higher_is_better"}
    assert d["interval"] == "bootstrap"  # corpus-level: never Wilson
    assert d["n"] == 30 and d["higher_is_better"] is True


# --------------------------------------------------------------------------------------------------
# Field metrics on JSON answers


def _field_samples() -> list[ScoringSample]:
    return [
        ScoringSample('```json\n{"category": "sports", "score": 3}\n```', '{"category": "sports"}'),  # fenced: hit
        # prose: hit (casefold)
        ScoringSample('Sure! Here it is: {"category": "Politics", "conf": 0.9}. Done.', '{"category": "politics"}'),
        ScoringSample('{"label": "sports"}', '{"category": "sports"}'),  # missing field: miss
        ScoringSample('{"category": "sports"', '{"category": "sports"}'),  # invalid JSON: miss
        ScoringSample('{"category": "science"}', '{"category": "sports"}'),  # wrong: miss
    ]


def test_field_accuracy_and_macro_f1():
    specs = [
        MetricSpec("accuracy", field="category"),
        MetricSpec("macro_f1", field="category"),
        MetricSpec("exact_match", field="category"),
    ]
    scores, answers = run(_field_samples(), specs, extractor=JSON)
    # accuracy: hits 1, 1, 0, 0, 0 -> 2/5
    assert scores.per_sample["accuracy[category]"] == [1.0, 1.0, 0.0, 0.0, 0.0]
    assert scores.summary["accuracy[category]"].value == pytest.approx(2 / 5, abs=1e-12)
    assert scores.per_sample["exact_match[category]"] == [1.0, 1.0, 0.0, 0.0, 0.0]
    # macro F1 over gold {politics, sports}: sports tp=1 fn=3 fp=0 -> 2/(2+3) = 2/5; politics tp=1 -> 1
    # ("science" and the empty answers are not gold labels) -> (2/5 + 1)/2 = 7/10
    assert scores.summary["macro_f1[category]"].value == pytest.approx(7 / 10, abs=1e-12)
    assert answers[0] == Answer('{"category":"sports","score":3}', {"category": "sports", "score": 3})
    assert answers[1].value == {"category": "Politics", "conf": 0.9}
    assert answers[2].value == {"label": "sports"}
    assert answers[3] == Answer("")


def test_field_metric_ignores_item_label_and_stringifies_non_strings():
    samples = [
        ScoringSample('{"n": 3, "tags": ["b", "a"]}', '{"n": 3, "tags": ["b", "a"]}', label="unrelated"),
        ScoringSample('{"n": "3"}', '{"n": 3}', label="unrelated"),
    ]
    scores, _ = run(
        samples, [MetricSpec("accuracy", field="n"), MetricSpec("exact_match", field="tags")], extractor=JSON
    )
    # 3 -> "3" on both sides; the string "3" also reads "3"
    assert scores.per_sample["accuracy[n]"] == [1.0, 1.0]
    # tags ["b","a"] vs ["b","a"] -> 1; an answer without the key never matches, even a reference without it
    assert scores.per_sample["exact_match[tags]"] == [1.0, 0.0]


def test_field_and_whole_answer_metrics_do_not_share_a_cache():
    samples = [
        ScoringSample('{"category": "world news today", "id": 1}', '{"category": "world news", "id": 2}'),
        ScoringSample('{"category": "sports", "id": 3}', '{"category": "sports", "id": 3}'),
    ]
    specs = [MetricSpec("rouge1"), MetricSpec("rouge1", field="category")]
    scores, _ = run(samples, specs, extractor=JSON)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    # field: "world news" vs "world news today" -> P = 2/3, R = 1 -> F = 0.8; "sports" vs "sports" -> 1
    assert scores.per_sample["rouge1[category]"] == pytest.approx([0.8, 1.0], abs=1e-12)
    whole = [
        scorer.score('{"category":"world news","id":2}', '{"category":"world news today","id":1}')["rouge1"].fmeasure,
        1.0,
    ]
    assert scores.per_sample["rouge1"] == pytest.approx(whole, abs=1e-12)
    assert scores.per_sample["rouge1"][0] != pytest.approx(0.8)


def test_json_extraction_makes_key_order_irrelevant_for_text_metrics():
    samples = [ScoringSample('{"b": 1, "a": [1, 2]}', '{"a":[1,2],"b":1}')]
    scores, answers = run(samples, ["exact_match"], extractor=JSON)
    assert answers[0].text == '{"a":[1,2],"b":1}'
    assert scores.per_sample["exact_match"] == [1.0]


# --------------------------------------------------------------------------------------------------
# Answer extraction


def test_extract_text():
    assert TEXT("  hello world \n") == Answer("hello world")
    assert TEXT("") == Answer("")


def test_extract_json():
    assert JSON('{"b": 2, "a": "é"}') == Answer('{"a":"é","b":2}', {"b": 2, "a": "é"})
    assert JSON('```json\n{"x": [1, 2]}\n```').value == {"x": [1, 2]}
    assert JSON('The result is {"x": 1} and also {"y": 2}.').value == {"x": 1}  # the first one
    assert JSON("Use {braces} like this: [1, 2, 3] ok").value == [1, 2, 3]  # skips what does not parse
    assert JSON('{"x": 1') == Answer("")
    assert JSON("42") == Answer("")  # a bare scalar is not an object or array
    assert JSON("no json here") == Answer("")


def test_json_helpers():
    assert strip_fences("```python\nprint(1)\n```") == "print(1)"
    assert strip_fences("text ```x``` text") == "text ```x``` text"
    assert parse_json_output("```\n[1]\n```") == (True, [1])
    assert parse_json_output("nope") == (False, None)
    assert find_json('prefix {"a": {"b": 1}} suffix') == {"a": {"b": 1}}


def test_extract_regex():
    with_group = Extractor("regex", r"Answer:\s*(\w+)")
    assert with_group("Reasoning...\nAnswer: B\n") == Answer("B")
    assert with_group("no answer given") == Answer("")
    without_group = Extractor("regex", r"\d+")
    assert without_group("there are 42 apples and 7 pears") == Answer("42")
    dotall = Extractor("regex", r"BEGIN(.*)END")
    assert dotall("BEGIN\n  two\nlines  \nEND") == Answer("two\nlines")


def test_extract_regex_group_that_did_not_participate():
    # the answer group is optional and did not match: there is no answer (not a crash)
    extractor = Extractor("regex", r"answer:\s*(\d+)?")
    assert extractor("answer: none") == Answer("")


def test_extract_first_and_last_line():
    output = "\n\n  first line  \n middle\n\n last line \n\n"
    assert Extractor("first_line")(output) == Answer("first line")
    assert Extractor("last_line")(output) == Answer("last line")
    assert Extractor("first_line")("   \n  ") == Answer("")
    assert Extractor("last_line")("") == Answer("")


def test_reference_extraction_falls_back_to_bare_reference():
    regex = Extractor("regex", r"Answer: (\d+)")
    assert regex.reference("42") == Answer("42")  # bare reference kept
    assert regex.reference("Work... Answer: 7") == Answer("7")  # extracted like an output
    assert Extractor("first_line").reference("  x  ") == Answer("x")
    assert Extractor("json").reference("plain") == Answer("")  # no fallback for JSON
    samples = [ScoringSample("so the Answer: 42", " 42 "), ScoringSample("Answer: 41", "42")]
    scores, answers = run(samples, ["exact_match"], extractor=regex)
    assert [a.text for a in answers] == ["42", "41"]
    assert scores.per_sample["exact_match"] == [1.0, 0.0]


# --------------------------------------------------------------------------------------------------
# Registering a metric


def test_register_a_metric_and_score_it_by_name():
    name = "test_starts_upper"
    assert name not in METRICS

    try:

        @register_metric(name)
        class StartsUpper(MeanMetric):
            """1 when the answer starts with an uppercase letter, 0 otherwise, undefined when empty."""

            def stats(self, inputs, cache):
                values = [float(i.answer[0].isupper()) if i.answer else float("nan") for i in inputs]
                return np.array(values, dtype=float).reshape(-1, 1)

        assert metric_class(name) is StartsUpper
        assert StartsUpper.name == name
        with pytest.raises(ValueError, match="registered twice"):
            register_metric(name)(StartsUpper)

        outputs = ["Yes", "no", "", "Maybe", "  ", "ok", "Fine", "sure", "No", "Right", "x", "Y"]
        scores, _ = run(pairs([(o, "") for o in outputs]), [name, "output_length"], bootstrap=200, seed=0)
        # defined for 10 samples (the two empty answers are undefined: None, not counted):
        # 1 0 _ 1 _ 0 1 0 1 1 0 1 -> 6/10
        assert scores.per_sample[name] == [1.0, 0.0, None, 1.0, None, 0.0, 1.0, 0.0, 1.0, 1.0, 0.0, 1.0]
        summary = scores.summary[name]
        assert summary.value == pytest.approx(6 / 10, abs=1e-12)
        assert summary.n == 10
        assert scores.summary["output_length"].n == 12
        assert summary.higher_is_better is True
        assert summary.ci_low is not None and 0.0 <= summary.ci_low <= summary.value <= summary.ci_high <= 1.0
    finally:
        METRICS.pop(name, None)
    assert name not in available_metrics()


def test_parallel_stats_equal_serial_stats(monkeypatch):
    """Large sets are scored in forked workers; the numbers must not change."""
    samples = [
        ScoringSample(f"the cat sat on mat number {i % 7}", f"a cat sat on the mat {i % 5}", str(i % 3))
        for i in range(60)
    ]
    names = ["exact_match", "token_f1", "bleu", "chrf", "rouge1", "rougeL", "macro_f1", "accuracy"]
    serial, _ = run(samples, names, bootstrap=50)
    monkeypatch.setattr(scoring, "PARALLEL_MIN_SAMPLES", 10)
    assert scoring._worker_count(60) >= 2
    parallel, _ = run(samples, names, bootstrap=50)
    assert parallel.per_sample == serial.per_sample
    assert parallel.summary == serial.summary
