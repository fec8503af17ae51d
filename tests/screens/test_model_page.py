"""The Model page's decisions, without Streamlit, on the shipped default card (and edited copies of it)."""

from __future__ import annotations

from dataclasses import replace

from medattn.explain import EXPLAINERS
from medattn.screens import model_page


def test_the_summary_and_headline_figures_come_from_the_card(predictor):
    card = predictor.card
    assert f"{card.parameters:,} parameters" in model_page.summary(card)
    assert f"{card.training.train_size:,} cases" in model_page.summary(card)
    figures = dict(model_page.headline_figures(card))
    assert figures["Macro AUC"] == f"{card.metrics.macro_auc:.3f}"
    pointing = card.metrics.explanations.methods["attention"].overall["pointing_game"]
    assert figures["Attention pointing game"] == f"{pointing:.2f}"
    without = card.with_changes(metrics=replace(card.metrics, explanations=None))
    assert [label for label, _ in model_page.headline_figures(without)] == ["Macro AUC", "ECE after calibration"]


def test_the_summary_says_when_the_attention_was_supervised_and_the_labels_smoothed(predictor):
    card = predictor.card  # the default model: trained with both
    assert model_page.summary(card).endswith(
        "; attention supervised by masks on 25% of cases; labels smoothed by 0.05)."
    )
    plain = card.with_changes(training=replace(card.training, attention_mask_weight=0.0, label_smoothing=0.0))
    assert "supervised" not in model_page.summary(plain) and "smoothed" not in model_page.summary(plain)


def test_findings_are_named_as_the_card_names_them(predictor):
    card = predictor.card
    rows = model_page.per_finding_rows(card)
    assert rows["Finding"] == [card.display_names[c] for c in card.metrics.per_class]
    points = model_page.roc_points(card)
    assert len(points) == sum(len(curve.fpr) for curve in card.metrics.roc.values())
    auc = card.metrics.per_class["nodule"].auc
    assert any(p["Finding"] == f"Pulmonary nodule (AUC {auc:.3f})" for p in points)
    assert set(model_page.confusion_tables(card)) == {card.display_names[c] for c in card.classes}


def test_explanation_quality_lists_every_method_then_the_random_order_reference(predictor):
    card = predictor.card
    table = model_page.explanation_table(card)
    measured = [EXPLAINERS[m].title for m in card.metrics.explanations.methods if m in EXPLAINERS]
    assert table["Method"] == [*measured, model_page.RANDOM_ORDER]
    assert table["Randomised ρ"][-1] == "—"  # the reference has no model to randomise
    per_finding = model_page.explanation_table_per_finding(card)
    assert len(per_finding["Method"]) == len(per_finding["Finding"]) == len(per_finding["Pointing ↑"])
    gradcam = table["Method"].index("Grad-CAM")
    assert table["Empty maps ↓"][gradcam] == f"{card.metrics.explanations.methods['gradcam'].overall['empty_maps']:.0%}"


def test_every_figure_has_the_same_decimals_in_a_column_and_every_headline_figure_is_explained(predictor):
    """AUC printed as "1" in one row and "0.9892" in another; missing values as "None"."""
    card = predictor.card
    columns = [
        *model_page.per_finding_rows(card).values(),
        *model_page.shift_table(card).values(),
        *model_page.explanation_table(card).values(),
    ]
    for column in columns:
        decimals = {len(v.split(".")[1]) for v in column if isinstance(v, str) and v.replace(".", "").isdigit()}
        assert len(decimals) <= 1
        assert "None" not in map(str, column) and "nan" not in map(str, column)
    assert set(model_page.HEADLINE_HELP) >= {label for label, _ in model_page.headline_figures(card)}


def test_a_method_that_localises_better_than_the_attention_is_named(predictor):
    card = predictor.card
    methods = model_page.explanation_figures(card)
    best = max(methods, key=lambda m: methods[m].overall["mass_in_mask"])
    warning = model_page.better_than_attention(card)
    if best == "attention":
        assert warning is None
    else:
        assert warning.startswith(f"On this model, **{EXPLAINERS[best].title} localises the findings better")
    methods = {
        method: replace(figures, overall=figures.overall | {"mass_in_mask": 0.9 if method == "attention" else 0.1})
        for method, figures in card.metrics.explanations.methods.items()
    }
    edited = replace(card.metrics, explanations=replace(card.metrics.explanations, methods=methods))
    assert model_page.better_than_attention(card.with_changes(metrics=edited)) is None


def test_readers_agreement_stands_beside_the_benchmark_figures(predictor):
    card = predictor.card
    agreed = {"attention": {"nodule": {"pointing": 1.0, "mass": 0.5, "marks": 2}}, "occlusion": {"unknown": {}}}
    agreed["occlusion"]["unknown"] = {"pointing": 0.0, "mass": 0.25, "marks": 1}
    attention, occlusion = model_page.agreement_rows(card, agreed)
    bench = card.metrics.explanations.methods["attention"].per_class["nodule"]["pointing_game"]
    assert attention["Finding"] == "Pulmonary nodule" and attention["Pointing, benchmark masks"] == f"{bench:.2f}"
    assert occlusion["Pointing, benchmark masks"] == "—" and occlusion["Mass in mark, readers' marks"] == "0.25"


def test_shifts_that_fail_silently_are_named_with_their_worst_finding(predictor):
    card = predictor.card
    shifts = card.robustness.shifts
    table = model_page.shift_table(card)
    assert len(table["Shift"]) == len(shifts) and set(table["Verdict"]) <= set(model_page.SHIFT_VERDICTS.values())
    holding = tuple(replace(shift, verdict="holds") for shift in shifts)
    assert model_page.silent_failures(card.with_changes(robustness=replace(card.robustness, shifts=holding))) is None
    failing = replace(
        holding[0],
        verdict="fails silently",
        auc={"nodule": 0.61, "effusion": 0.99},
        pointing={"nodule": 0.4, "effusion": 0.9},
        error=0.22,
    )
    edited = replace(card.robustness, shifts=(failing, *holding[1:]))
    named = model_page.silent_failures(card.with_changes(robustness=edited))
    assert f"{failing.shift} (22% of images called wrongly; pulmonary nodule: AUC 0.61, pointing 0.40)" in named
    unmeasured = replace(edited, shifts=(replace(failing, error=None), *holding[1:]))  # a card from before errors
    assert f"{failing.shift} (pulmonary nodule: AUC 0.61" in model_page.silent_failures(
        card.with_changes(robustness=unmeasured)
    )
    pair, rate = next(iter(card.robustness.capture_rates.items()))
    first, second = (card.display_names[f] for f in pair.split(" -> "))
    assert f"{first} on {second} {rate:.0%}" in model_page.capture_caption(card)


def test_the_gate_s_curve_and_the_maps_stability_are_read_from_the_card_and_absent_from_older_cards(predictor):
    card = predictor.card
    curve = model_page.risk_coverage(card)
    families = {point["Shift family"] for point in curve}
    assert {"clean", "noise", "borders and text"} <= families
    assert len(curve) == len(families) * len(card.robustness.coverages)
    caption = model_page.gate_caption(card)
    assert f"unlikeness above {card.unlikeness.threshold:.0f}" in caption and "relative noise above 0.0" in caption
    stability = model_page.stability_table(card)
    assert model_page.CONTROL_MAP in stability["Map"] and EXPLAINERS["attention"].title in stability["Map"]
    assert all(pairs > 0 for pairs in stability["Pairs"])
    assert "Pulmonary nodule" in stability["Finding"] and "pulmonary nodule" in model_page.stability_caption(card)
    older = card.with_changes(robustness=replace(card.robustness, coverages=(), risk_coverage={}, map_stability={}))
    assert not model_page.risk_coverage(older) and not model_page.stability_table(older)["Finding"]
    table = model_page.shift_table(card)
    assert table["Error shown"][table["Shift"].index("Gaussian noise sd 0.10")] == "—"  # every image withheld


def test_the_caption_says_what_localisation_was_measured_against(predictor):
    """The benchmark's masks, or a public dataset's boxes or outlines, as evaluate --explain records them."""
    card = predictor.card
    said = {}
    for regions in (None, "masks", "boxes", "outlines"):
        explanations = replace(card.metrics.explanations, regions=regions)
        said[regions] = model_page.explanation_caption(
            card.with_changes(metrics=replace(card.metrics, explanations=explanations))
        )
    assert "(masks grown by one token cell)" in said[None] and said[None] == said["masks"]
    assert (
        "the dataset's boxes, every reader's united, grown by one token cell; cases are those with a box"
        in said["boxes"]
    )
    assert "the dataset's outlines, grown by one token cell; cases are those with an outline" in said["outlines"]
