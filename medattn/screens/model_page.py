"""What the Model page shows, decided without Streamlit: the card's figures as the rows, points, verdicts and
warnings a reader sees. The page (``pages/views/model.py``) only lays them out; the rules are tested in
milliseconds against the shipped card (``tests/screens/test_model_page.py``).

Every read of the card's measured sections (``metrics``, ``robustness``, ``training``) is here, so the page
never digs through them by string keys.
"""

from __future__ import annotations

from medattn.explain import EXPLAINERS
from medattn.explain.stability import CHANGES, RANDOMISED, STABLE_FROM, TOP_SHARE
from medattn.model.card import ModelCard
from medattn.model.figures import ExplanationQuality, MethodQuality
from medattn.review.text import figure
from medattn.training.robustness import ACCEPTABLE_EXTRA_ERROR, FLAGGED_SHARE, HOLDS_AUC, HOLDS_POINTING

# Short headers, so that every column fits the page at 1280 px; the caption under the table defines each.
EXPLANATION_COLUMNS = {
    "pointing_game": "Pointing ↑",
    "mass_in_mask": "Mass in mask ↑",
    "top_region_iou": "Top-region IoU ↑",
    "otsu_iou": "Otsu IoU ↑",
    "deletion_auc": "Deletion ↓",
    "insertion_auc": "Insertion ↑",
    "empty_maps": "Empty maps ↓",
}
# What the headline figures mean, for a reader who is not a statistician.
HEADLINE_HELP = {
    "Macro AUC": "The area under the ROC curve of each finding, averaged over the findings: 0.5 is chance, 1 "
    "is perfect separation of scans with the finding from scans without it.",
    "ECE after calibration": "Expected calibration error: how far, on average, the stated probabilities are from "
    "how often the finding is really there (0 is perfect; 0.05 means five points off on average).",
    "Attention pointing game": "The share of held-out scans with a finding on which the attention's hottest point "
    "lies on the finding (its true outline, grown by one token cell).",
}
# Localisation on other data (a public dataset's boxes or outlines) beside the card's own.
LOCALISATION_COLUMNS = {"pointing_game": "Pointing ↑", "otsu_iou": "Otsu IoU ↑", "mass_in_mask": "Mass in region ↑"}
RANDOM_ORDER = "Random order (reference)"
CONTROL_MAP = "Randomised model's attention (control)"
SHIFT_VERDICTS = {"holds": "holds", "flagged": "flagged as unlike", "fails silently": "⚠ fails silently"}


def summary(card: ModelCard) -> str:
    """One sentence under the card's name: the task, the size, and what it was trained on, for how long."""
    training = card.training
    how = [training.data or "unrecorded data"]
    if training.attention_mask_weight:  # two models on the same data can differ in this alone
        share = training.attention_mask_share
        how.append("attention supervised by masks" + (f" on {share:.0%} of cases" if share is not None else ""))
    if training.label_smoothing:
        how.append(f"labels smoothed by {training.label_smoothing:g}")
    return (
        f"{card.task.capitalize()} classifier of {len(card.classes)} findings, {card.parameters:,} parameters, "
        f"trained in {(training.seconds or 0) / 60:.1f} min on {training.train_size or 0:,} cases "
        f"({'; '.join(how)})."
    )


def explanation_figures(card: ModelCard) -> dict[str, MethodQuality]:
    """method -> its measured figures, for the methods the app offers; empty where the card holds none."""
    quality = card.metrics.explanations if card.metrics else None
    methods = quality.methods if quality else {}
    return {method: figures for method, figures in methods.items() if method in EXPLAINERS}


def headline_figures(card: ModelCard) -> list[tuple[str, str]]:
    """(label, value) of the figures above the table: macro AUC, calibration error, attention's pointing; each
    label's meaning is ``HEADLINE_HELP[label]``."""
    figures = [
        ("Macro AUC", f"{card.metrics.macro_auc:.3f}"),
        ("ECE after calibration", f"{card.metrics.ece_after_calibration:.3f}"),
    ]
    attention = explanation_figures(card).get("attention")
    pointing = attention.overall.get("pointing_game") if attention else None
    return figures + ([("Attention pointing game", f"{pointing:.2f}")] if pointing is not None else [])


def per_finding_rows(card: ModelCard) -> dict[str, list]:
    """The held-out figures per finding, as table columns."""
    per_class = card.metrics.per_class
    return {
        "Finding": [card.display_name(c) for c in per_class],
        "AUC": [figure(v.auc, 3) for v in per_class.values()],
        "F1": [figure(v.f1, 3) for v in per_class.values()],
        "Accuracy": [figure(v.accuracy, 3) for v in per_class.values()],
    }


def roc_points(card: ModelCard) -> list[dict]:
    """Every point of every finding's ROC curve, the finding labelled with its AUC; none where not measured."""
    per_class = card.metrics.per_class
    return [
        {
            "Finding": f"{card.display_name(c)} (AUC {per_class[c].auc:.3f})",
            "False-positive rate": fpr,
            "True-positive rate": tpr,
        }
        for c, curve in card.metrics.roc.items()
        for fpr, tpr in zip(curve.fpr, curve.tpr, strict=True)
    ]


def reliability_bins(card: ModelCard) -> list[dict]:
    """The reliability diagram's bins, before and after calibration; none where not measured."""
    return [
        {
            "Calibration": when,
            "Predicted probability": b.predicted,
            "Observed frequency": b.observed,
            "Share of predictions": b.share,
        }
        for when, curve in card.metrics.reliability.items()
        for b in curve
    ]


def confusion_tables(card: ModelCard) -> dict[str, dict[str, list]]:
    """Finding's display name -> its confusion matrix at the decision threshold, as table columns."""
    tables = {}
    for c, values in card.metrics.per_class.items():
        counts = values.confusion
        tables[card.display_name(c)] = {
            "": ["Present", "Absent"],
            "Called present": [counts.true_positive, counts.false_positive],
            "Called absent": [counts.false_negative, counts.true_negative],
        }
    return tables


def _quality_rows(card: ModelCard) -> list[tuple[str, MethodQuality]]:
    """(title, figures) per method, then random-order deletion and insertion: the reference to beat."""
    rows = [(EXPLAINERS[m].title, figures) for m, figures in explanation_figures(card).items()]
    reference = card.metrics.explanations.random_order if card.metrics and card.metrics.explanations else None
    return rows + ([(RANDOM_ORDER, reference)] if reference else [])


def _measured_columns(rows: list[tuple[str, MethodQuality]]) -> dict[str, str]:
    """The explanation columns the card has figures for (a card measured before CheXlocalize's IoU has none)."""
    return {key: title for key, title in EXPLANATION_COLUMNS.items() if any(key in f.overall for _, f in rows)}


def explanation_table(card: ModelCard) -> dict[str, list]:
    """Explanation quality overall, one row per method and the random-order reference last."""
    rows = _quality_rows(card)
    columns = _measured_columns(rows)
    return (
        {"Method": [title for title, _ in rows]}
        | {title: [_share(figures.overall, key) for _, figures in rows] for key, title in columns.items()}
        | {
            "s / image": [figure(figures.seconds_per_image, 3) for _, figures in rows],
            "Randomised ρ": [
                figure(figures.randomisation[-1].rank_correlation if figures.randomisation else None)
                for _, figures in rows
            ],
        }
    )


def explanation_table_per_finding(card: ModelCard) -> dict[str, list]:
    """Explanation quality per method and finding."""
    rows = _quality_rows(card)
    return {
        "Method": [title for title, figures in rows for _ in figures.per_class],
        "Finding": [card.display_name(c) for _, figures in rows for c in figures.per_class],
    } | {
        title: [_share(v, key) for _, figures in rows for v in figures.per_class.values()]
        for key, title in _measured_columns(rows).items()
    }


def _share(figures: dict[str, float], key: str) -> str:
    """One explanation figure as the tables write it; empty maps as a percentage, since they are a share."""
    value = figures.get(key)
    return f"{value:.0%}" if key == "empty_maps" and value is not None else figure(value)


def localisation_elsewhere(card: ModelCard) -> dict[str, list] | None:
    """Each method's localisation per finding on every other data measured (``evaluate --add-localisation``: a
    public dataset's films against its readers' boxes or outlines), each row beside the same method and finding
    on the card's own held-out data (the benchmark's masks, for the default model); None where no other was."""
    if not card.localisation_elsewhere:
        return None
    own = (card.metrics.explanations,) if card.metrics and card.metrics.explanations else ()
    sources = own + card.localisation_elsewhere
    measured = {(m, c) for q in card.localisation_elsewhere for m, f in q.methods.items() for c in f.per_class}
    rows = [
        (method, finding, quality)
        for method in EXPLAINERS
        for finding in card.classes
        if (method, finding) in measured
        for quality in sources
    ]
    figures = [q.methods[m].per_class.get(c, {}) if m in q.methods else {} for m, c, q in rows]
    return {
        "Method": [EXPLAINERS[m].title for m, _, _ in rows],
        "Finding": [card.display_name(c) for _, c, _ in rows],
        "Measured on": [f"{q.data} ({_against(q)})" for _, _, q in rows],
        "Cases": [f"{f['cases']:.0f}" if "cases" in f else "—" for f in figures],
    } | {title: [figure(f.get(key)) for f in figures] for key, title in LOCALISATION_COLUMNS.items()}


def _against(quality: ExplanationQuality) -> str:
    """What localisation was measured against; a card from before ``regions`` was recorded measured masks."""
    localised = any("pointing_game" in figures.overall for figures in quality.methods.values())
    return quality.regions or ("masks" if localised else "no regions: not localised")


def localisation_elsewhere_caption() -> str:
    return (
        "Each finding on the cases that have it, up to the number `evaluate --explain` was given. Pointing: the "
        "share of maps whose hottest point lies in the finding's region, grown by one token cell; Otsu IoU: the "
        "overlap of the map cut at Otsu's threshold with it, as CheXlocalize (Saporta et al. 2022) measures "
        "saliency maps against radiologists' outlines; mass: the share of the map's heat in it. A box holds more "
        "than the finding, so pointing and mass read higher against boxes than against an outline or mask, and "
        "IoU lower (the map is not a rectangle). Where the real films are unlike the data the model was trained "
        "on, the app withholds its output on them: these figures say where its maps would point, not that they "
        "may be shown."
    )


def randomisation_table(card: ModelCard) -> dict[str, list]:
    """Each method's rank correlation with its trained map as layers are re-initialised from the top."""
    methods = explanation_figures(card)
    first = next(iter(methods.values()))
    return {"Re-initialised, from the top down to": [step.layer for step in first.randomisation]} | {
        EXPLAINERS[m].title: [figure(step.rank_correlation) for step in figures.randomisation]
        for m, figures in methods.items()
    }


def explanation_caption(card: ModelCard) -> str:
    quality = card.metrics.explanations
    where = {
        "boxes": "the dataset's boxes, every reader's united, grown by one token cell; cases are those with a box",
        "outlines": "the dataset's outlines, grown by one token cell; cases are those with an outline",
    }.get(quality.regions, "masks grown by one token cell")
    return (
        f"Up to {quality.cases_per_class} cases per finding of {quality.data}. Pointing: the share of maps whose "
        "hottest point lies on the finding; mass in mask: the share of a map's heat on it; top-region IoU: the "
        f"overlap of the map's hottest region, as large as the finding, with it ({where}); Otsu IoU, where "
        "measured: the overlap of the map cut at Otsu's threshold, as CheXlocalize measures saliency maps. "
        "Deletion and insertion: the area under the finding's probability as pixels are hidden as mean grey, "
        f"hottest first, or revealed; the {RANDOM_ORDER.lower()} row hides them in random order, the figure a "
        "faithful map must beat. Empty maps: the share with no heat anywhere, which paint nothing and miss the "
        "pointing game. Randomised ρ, the rank correlation with the map of the same model with every weight "
        "re-drawn, should be near 0: a map that survives re-initialising the whole model does not explain it."
    )


def better_than_attention(card: ModelCard) -> str | None:
    """Where another method localises better than the model's own attention (more mass in the true mask),
    the warning that says so and why; None where attention is the best or was not measured."""
    methods = explanation_figures(card)
    if "attention" not in methods or "mass_in_mask" not in methods["attention"].overall:
        return None
    best = max(methods, key=lambda m: methods[m].overall.get("mass_in_mask", 0.0))
    if best == "attention":
        return None
    attention, better = methods["attention"].overall, methods[best].overall
    return (
        f"On this model, **{EXPLAINERS[best].title} localises the findings better than the model's own "
        f"attention**: mass in mask {better['mass_in_mask']:.2f} against {attention['mass_in_mask']:.2f}, "
        f"pointing game {better['pointing_game']:.2f} against {attention['pointing_game']:.2f}. The attention "
        "shows where the model pooled its evidence, not what each place said: a finding's logit is the "
        "attention-weighted sum of every token's own score, and a method that weighs both comes closer "
        "to the finding. The Review page shows the attention first because it is the model's own "
        "computation; choose another method there to compare."
    )


def agreement_rows(card: ModelCard, agreed: dict[str, dict[str, dict[str, float]]]) -> list[dict]:
    """Readers' marks against each method's maps (``medattn.review.marks.agreement_summary``), beside the
    same method's figures against the benchmark's masks; '—' where the benchmark has none."""
    methods = explanation_figures(card)
    rows = []
    for method in EXPLAINERS:
        for finding, figures in agreed.get(method, {}).items():
            bench = methods[method].per_class.get(finding, {}) if method in methods else {}
            rows.append(
                {
                    "Method": EXPLAINERS[method].title,
                    "Finding": card.display_name(finding),
                    "Marks": figures["marks"],
                    "Pointing, readers' marks": figure(figures["pointing"]),
                    "Mass in mark, readers' marks": figure(figures["mass"]),
                    "Pointing, benchmark masks": figure(bench.get("pointing_game")),
                    "Mass in mask, benchmark masks": figure(bench.get("mass_in_mask")),
                }
            )
    return rows


def shift_table(card: ModelCard) -> dict[str, list]:
    """The robustness suite, one row per shift, with its verdict in words."""
    shifts = card.robustness.shifts
    return {
        "Shift": [s.shift for s in shifts],
        "Family": [s.family for s in shifts],
        "Macro AUC": [figure(s.macro_auc, 3) for s in shifts],
        "ECE": [figure(s.ece, 3) for s in shifts],
        "Pointing": [figure(s.macro_pointing) for s in shifts],
        "Withheld": [f"{s.flagged:.0%}" for s in shifts],
        "Error": [share(s.error) for s in shifts],
        "Error shown": [share(s.error_shown) for s in shifts],
        "Gate AUROC": [figure(s.detection_auroc) for s in shifts],
        "Verdict": [SHIFT_VERDICTS[s.verdict] for s in shifts],
    }


def share(value: float | None) -> str:
    """A share as a percentage to one decimal; a dash where it was not measured (or every image was withheld)."""
    return "—" if value is None else f"{value:.1%}"


def risk_coverage(card: ModelCard) -> list[dict]:
    """The risk-coverage curve, a point per (family, coverage): the error among the images a gate would keep, most
    familiar first; none where the card was measured before it was recorded."""
    robustness = card.robustness
    return [
        {"Shift family": family, "Share of images shown": coverage, "Error among them": risk}
        for family, risks in robustness.risk_coverage.items()
        for coverage, risk in zip(robustness.coverages, risks, strict=True)
    ]


def gate_caption(card: ModelCard) -> str:
    """What the curve says, and where the card's gate sits on it."""
    limits = card.unlikeness
    noise = "" if limits is None or limits.noise_limit is None else f" or relative noise above {limits.noise_limit:.3f}"
    unlikeness = "" if limits is None else f" (unlikeness above {limits.threshold:.0f}{noise})"
    return (
        "Selective prediction: for each family of shifts pooled with the clean cases, the share of images with any "
        "finding called wrongly among those a gate shows, keeping the most familiar first. Where the line falls as "
        "fewer images are shown, the gate withholds what would mislead; where it is flat, withholding buys nothing. "
        f"The app withholds the output of a scan beyond its limits{unlikeness}: the table's Withheld column. Its "
        "limits were set by medattn fit-ood to keep every shift of a validation seed the model still reads well."
    )


def stability_table(card: ModelCard) -> dict[str, list]:
    """The map-stability check, a row per finding and map; empty where the card was measured before it."""
    rows = [
        (finding, column, figures)
        for finding, maps in card.robustness.map_stability.items()
        for column, figures in maps.items()
    ]
    return {
        "Finding": [card.display_name(finding) for finding, _, _ in rows],
        "Map": [CONTROL_MAP if column == RANDOMISED else EXPLAINERS[column].title for _, column, _ in rows],
        "Pairs": [figures.pairs for _, _, figures in rows],
        "Median worst overlap": [figure(figures.median_worst) for _, _, figures in rows],
        "Stable": [f"{figures.stable:.0%}" for _, _, figures in rows],
        "Answer moved": [f"{figures.answer_changed:.0%}" for _, _, figures in rows],
    }


def stability_caption(card: ModelCard) -> str:
    robustness = card.robustness
    separation = ", ".join(
        f"{card.display_name(finding).lower()} {figure(auc)}"
        for finding, auc in robustness.stability_separation.items()
    )
    return (
        f"The Review page's map-stability check on every finding the model called present correctly in the first "
        f"{robustness.stability_cases} clean cases of {robustness.data}: the map computed again under "
        f"{', '.join(CHANGES)} (changes no reader could see), and the overlap of its hottest {TOP_SHARE:.0%} with "
        f"itself. Median worst overlap is the median over pairs of the least overlap over the changes that left the "
        f"answer alone; stable is the share whose worst overlap is at least {STABLE_FROM}; answer moved is the share "
        "where some change moved the model's probability or call (such a change is not counted). A randomised model's "
        "maps are the control: a check that called them as stable as the trained model's would say nothing of the "
        f"model. How well the worst overlap tells the trained attention from the control (AUC, 0.5 for none): "
        f"{separation}."
        + (
            " Here the randomised model's smooth maps hold better than the trained model's: the check says whether "
            "the map on screen moves under such changes, not whether it shows what the model learned (the "
            "faithfulness check does that)."
            if any(auc is not None and auc < 0.5 for auc in robustness.stability_separation.values())
            else ""
        )
    )


def shift_table_per_finding(card: ModelCard) -> dict[str, list]:
    shifts = card.robustness.shifts
    return {
        "Shift": [s.shift for s in shifts for _ in s.auc],
        "Finding": [card.display_name(f) for s in shifts for f in s.auc],
        "AUC": [figure(v, 3) for s in shifts for v in s.auc.values()],
        "Attention pointing": [figure(v) for s in shifts for v in s.pointing.values()],
    }


def silent_failures(card: ModelCard) -> str | None:
    """The shifts on which the model is wrong more often and nothing on screen says so, each with its least
    accurate finding; None where there is none."""
    silent = [s for s in card.robustness.shifts if s.verdict == "fails silently"]
    if not silent:
        return None
    worst = [(s, min(s.auc, key=s.auc.get)) for s in silent]
    return (
        "**Where this model is wrong more often and nothing on screen says so:** "
        + "; ".join(
            f"{s.shift} ({'' if s.error is None else f'{s.error:.0%} of images called wrongly; '}"
            f"{card.display_name(f).lower()}: AUC {s.auc[f]:.2f}, pointing {s.pointing[f]:.2f})"
            for s, f in worst
        )
        + ". The gate does not withhold these scans, so the Review page shows their output."
    )


def shift_caption(card: ModelCard) -> str:
    robustness = card.robustness
    return (
        f"{robustness.cases_per_shift} cases of {robustness.data} per shift, each through the app's own "
        "path; pointing is the attention's pointing game, a mean over findings; withheld is the share whose output "
        "the page withholds (unlike the training data, or too noisy); error is the share of images with any "
        "finding called wrongly, error shown that share among the images not withheld; gate AUROC is how well the "
        f"gate's score tells the shifted scans from clean ones. A shift holds when macro AUC ≥ {HOLDS_AUC}, "
        f"pointing ≥ {HOLDS_POINTING} and its error at most {ACCEPTABLE_EXTRA_ERROR * 100:.0f} points above the clean "
        f"cases'; it is flagged when at least {FLAGGED_SHARE:.0%} of its images are withheld. "
        "Otherwise it fails silently: the model is wrong more often and nothing on screen says so. Means over "
        "findings are macro means: each finding counts once."
    )


def capture_caption(card: ModelCard) -> str:
    """How often one finding's attention peaks on another finding present in the same image."""
    rates = ", ".join(
        f"{' on '.join(card.display_name(f) for f in pair.split(' -> '))} {rate:.0%}"
        for pair, rate in card.robustness.capture_rates.items()
    )
    return (
        "How often one finding's attention peaks on another finding present in the same image, and off its own: "
        f"{rates}."
    )


def training_curve(card: ModelCard) -> dict[str, list]:
    """Validation macro AUC per epoch; empty where the card records no history."""
    history = card.training.history
    return {"Epoch": [h.epoch for h in history], "Validation macro AUC": [h.val_macro_auc for h in history]}
