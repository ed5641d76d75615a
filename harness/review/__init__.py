"""Human review: blinded samples of a run's outputs for people to rate, their ratings read back as metrics.

    export     a stratified, seeded sample of items; every chosen variant's output, shuffled, under codes;
               a CSV for spreadsheets and an offline HTML form per rater; the key kept in the run folder
    form       the self-contained HTML form (1-5 ratings or a pairwise pick, local storage, a CSV download)
    ratings    the ratings CSVs validated, unblinded with the key, stored in RUN_DIR/review/
    agreement  Krippendorff's alpha (ordinal) and Cohen's weighted kappa, with how to read them
    pairwise   win rate with Wilson's interval and the sign test
    metrics    ratings as `human_*` metrics of a RunResult; the judge metric's agreement with people

May import harness.results and the layers below it; harness.compare imports it (ratings in compare, diff
and the decision). Never an engine.
"""

from __future__ import annotations

DIMENSIONS = ("accuracy", "format", "overall")  # each rated 1-5
SCALE = (1, 2, 3, 4, 5)
REVIEW_DIR = "review"  # in the run folder: keys/, ratings.jsonl, pairwise.jsonl, agreement.json
METRIC_PREFIX = "human_"  # human_accuracy, human_format, human_overall
