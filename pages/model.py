"""Model: the chosen model's card — what it was trained on and how well it does."""

from pages import shared  # first: it imports the heavy libraries once, for every session

# isort: split
from dataclasses import asdict

import altair as alt
import streamlit as st

from medattn.errors import StoreError
from medattn.explain import EXPLAINERS
from medattn.model.card import held_out_wording
from medattn.review.marks import agreement_summary
from medattn.training.robustness import FLAGGED_SHARE, HOLDS_AUC, HOLDS_POINTING

EXPLANATION_COLUMNS = {
    "pointing_game": "Pointing game ↑",
    "mass_in_mask": "Mass in mask ↑",
    "top_region_iou": "Top-region IoU ↑",
    "deletion_auc": "Deletion AUC ↓",
    "insertion_auc": "Insertion AUC ↑",
}

RANDOM_ORDER = "Random order (reference)"

VERDICTS = {"holds": "holds", "flagged": "flagged as unlike", "fails silently": "⚠ fails silently"}

DISTINCT = alt.Scale(scheme="category10")  # lines told apart at a glance, not shades of one blue

with shared.page("Model card"):
    models = shared.available_models()
    if len(models) > 1:  # the choice is kept for the other pages (widget state is dropped when leaving a page)
        names = list(models)
        current = st.session_state.get("model") if st.session_state.get("model") in models else "default"
        broken = {name for name, folder in models.items() if shared.unloadable(folder)}
        st.session_state.model = st.selectbox(
            "Model",
            names,
            index=names.index(current) if current in names else 0,
            format_func=lambda name: f"{name} (cannot be loaded)" if name in broken else name,
            key="model-picker",
        )
    card = shared.chosen_card()
    metrics, training = card.metrics, card.training

    st.subheader(f"{card.name} · version {card.version}")
    st.write(
        f"{card.task.capitalize()} classifier of {len(card.classes)} findings, {card.parameters:,} parameters, "
        f"trained in {training.get('seconds', 0) / 60:.1f} min on {training.get('train_size', 0):,} cases "
        f"({training.get('data', 'unrecorded data')})."
    )

    st.info(card.intended_use)

    explanations = metrics.get("explanations", {}).get("methods", {})
    if metrics:
        left, middle, right = st.columns(3)
        left.metric("Macro AUC", f"{metrics['macro_auc']:.3f}")
        middle.metric("ECE after calibration", f"{metrics['ece_after_calibration']:.3f}")
        if "pointing_game" in explanations.get("attention", {}).get("overall", {}):
            right.metric("Attention pointing game", f"{explanations['attention']['overall']['pointing_game']:.2f}")
        names = card.display_names
        per_class = metrics["per_class"]
        st.dataframe(
            {
                "Finding": [names.get(c, c) for c in per_class],
                "AUC": [v["auc"] for v in per_class.values()],
                "F1": [v["f1"] for v in per_class.values()],
                "Accuracy": [v["accuracy"] for v in per_class.values()],
            },
            hide_index=True,
        )
        st.caption(held_out_wording(metrics))
        roc, calibration = st.columns(2)
        if "roc" in metrics:
            roc.markdown("##### ROC curves")
            labelled = {c: f"{names.get(c, c)} (AUC {per_class[c]['auc']:.3f})" for c in metrics["roc"]}
            points = [
                {"Finding": labelled[c], "False-positive rate": fpr, "True-positive rate": tpr}
                for c, curve in metrics["roc"].items()
                for fpr, tpr in zip(curve["fpr"], curve["tpr"], strict=True)
            ]
            roc.altair_chart(
                alt.Chart(alt.Data(values=points))
                .mark_line(interpolate="step-after")
                .encode(
                    x="False-positive rate:Q",
                    y="True-positive rate:Q",
                    color=alt.Color("Finding:N", scale=DISTINCT, legend=alt.Legend(orient="bottom")),
                ),
                width="stretch",
            )
        if "reliability" in metrics:
            calibration.markdown("##### Reliability, before and after calibration")
            bins = [
                {
                    "Calibration": when,
                    "Predicted probability": b["predicted"],
                    "Observed frequency": b["observed"],
                    "Share of predictions": b["share"],
                }
                for when, curve in metrics["reliability"].items()
                for b in curve
            ]
            x = alt.X("Predicted probability:Q", title="Predicted probability")
            y = alt.Y("Observed frequency:Q", title="Observed frequency")
            diagonal = alt.Chart(alt.Data(values=[{"Predicted probability": 0, "Observed frequency": 0},
                                                  {"Predicted probability": 1, "Observed frequency": 1}]))  # fmt: skip
            calibration.altair_chart(
                diagonal.mark_line(color="grey", strokeDash=[4, 4]).encode(x=x, y=y)
                + alt.Chart(alt.Data(values=bins))
                .mark_line(point=True)
                .encode(
                    x=x,
                    y=y,
                    color=alt.Color("Calibration:N", scale=DISTINCT, legend=alt.Legend(orient="bottom")),
                    tooltip=["Calibration:N", alt.Tooltip("Share of predictions:Q", format=".1%")],
                )
                + alt.Chart(alt.Data(values=bins))
                .mark_circle()
                .encode(
                    x=x,
                    y=y,
                    color=alt.Color("Calibration:N", scale=DISTINCT),
                    size=alt.Size("Share of predictions:Q", legend=None),
                ),
                width="stretch",
            )
            calibration.caption(
                "Every (case, finding) pair in 15 equal-width bins; a point's size is its bin's share of the "
                "predictions (hover for the figure); the dashed line is perfect calibration."
            )
        st.markdown("##### Confusion matrices at the decision thresholds")
        for column, (c, values) in zip(st.columns(len(per_class)), per_class.items(), strict=True):
            counts = values["confusion"]
            column.markdown(f"**{names.get(c, c)}**")
            column.dataframe(
                {
                    "": ["Present", "Absent"],
                    "Called present": [counts["true_positive"], counts["false_positive"]],
                    "Called absent": [counts["false_negative"], counts["true_negative"]],
                },
                hide_index=True,
            )

    if explanations:
        st.markdown("#### Explanation quality")
        methods = [m for m in explanations if m in EXPLAINERS]
        quality = metrics["explanations"]
        # Random-order deletion and insertion, the reference a faithful map must beat, as a last row.
        reference = quality.get("random_order")
        rows = [(EXPLAINERS[m].title, explanations[m]) for m in methods]
        rows += [(RANDOM_ORDER, reference)] if reference else []
        st.dataframe(
            {"Method": [title for title, _ in rows]}
            | {
                title: [figures["overall"].get(key) for _, figures in rows]
                for key, title in EXPLANATION_COLUMNS.items()
            }
            | {
                "Seconds per image": [figures.get("seconds_per_image") for _, figures in rows],
                "Rank correlation, model randomised": [
                    figures["randomisation"][-1]["rank_correlation"] if "randomisation" in figures else None
                    for _, figures in rows
                ],
            },
            hide_index=True,
        )
        best = max(methods, key=lambda m: explanations[m]["overall"].get("mass_in_mask", 0.0))
        if best != "attention" and "mass_in_mask" in explanations["attention"]["overall"]:
            attention, better = explanations["attention"]["overall"], explanations[best]["overall"]
            st.warning(
                f"On this model, **{EXPLAINERS[best].title} localises the findings better than the model's own "
                f"attention**: mass in mask {better['mass_in_mask']:.2f} against {attention['mass_in_mask']:.2f}, "
                f"pointing game {better['pointing_game']:.2f} against {attention['pointing_game']:.2f}. The attention "
                "shows where the model pooled its evidence, not what each place said: a finding's logit is the "
                "attention-weighted sum of every token's own score, and a method that weighs both comes closer "
                "to the finding. The Review page shows the attention first because it is the model's own "
                "computation; choose another method there to compare.",
                icon=":material/info:",
            )
        st.caption(
            f"Up to {quality['cases_per_class']} cases per finding of {quality['data']}. "
            "Masks grown by one token cell. Deletion and insertion hide pixels as mean grey, hottest first; "
            f"the {RANDOM_ORDER.lower()} row hides them in random order, the figure a faithful map must beat. "
            "The last column should be near 0: "
            "a map that survives re-initialising the whole model does not explain the model."
        )
        with st.expander("Per finding"):
            st.dataframe(
                {
                    "Method": [title for title, figures in rows for _ in figures["per_class"]],
                    "Finding": [names.get(c, c) for _, figures in rows for c in figures["per_class"]],
                }
                | {
                    title: [v.get(key) for _, figures in rows for v in figures["per_class"].values()]
                    for key, title in EXPLANATION_COLUMNS.items()
                },
                hide_index=True,
            )
        with st.expander("Model-randomisation sanity check"):
            st.dataframe(
                {
                    "Re-initialised, from the top down to": [
                        step["layer"] for step in explanations[methods[0]]["randomisation"]
                    ]
                }
                | {
                    EXPLAINERS[m].title: [step["rank_correlation"] for step in explanations[m]["randomisation"]]
                    for m in methods
                },
                hide_index=True,
            )
            st.caption("Mean rank correlation of each map with the trained model's map, as layers are re-initialised.")

    agreed, store = {}, shared.review_store()
    if store is not None:
        try:
            agreed = agreement_summary(store.reader_agreements(card.name, card.version))
        except StoreError as error:  # the card is still shown
            shared.show_error(error)
    if agreed:
        names = card.display_names
        st.markdown("#### Agreement with readers' marks")
        rows = [
            (method, finding, figures, explanations.get(method, {}).get("per_class", {}).get(finding, {}))
            for method in EXPLAINERS
            for finding, figures in agreed.get(method, {}).items()
        ]
        figure = "{:.2f}".format
        st.table(
            [
                {
                    "Method": EXPLAINERS[method].title,
                    "Finding": names.get(finding, finding),
                    "Marks": figures["marks"],
                    "Pointing, readers' marks": figure(figures["pointing"]),
                    "Mass in mark, readers' marks": figure(figures["mass"]),
                    "Pointing, benchmark masks": figure(bench["pointing_game"]) if "pointing_game" in bench else "—",
                    "Mass in mask, benchmark masks": figure(bench["mass_in_mask"]) if "mass_in_mask" in bench else "—",
                }
                for method, finding, figures, bench in rows
            ],
            hide_index=True,
        )
        st.caption(
            "Every mark readers drew on the Review page with this model's maps, each map measured against the mark "
            "as the benchmark measures it against a true mask: pointing is the share of marks holding the map's "
            "peak, mass the mean share of the map's heat inside the mark. Each mark counts once. A reader's mark "
            "is not ground truth: agreement says how often the map points where the reader looked."
        )

    if card.robustness:
        names, robustness, shifts = card.display_names, card.robustness, card.robustness["shifts"]
        st.markdown("#### Where the model holds, and where it does not")
        st.dataframe(
            {
                "Shift": [s["shift"] for s in shifts],
                "Family": [s["family"] for s in shifts],
                "Macro AUC": [s["macro_auc"] for s in shifts],
                "ECE": [s["ece"] for s in shifts],
                "Attention pointing (macro)": [s["macro_pointing"] for s in shifts],
                "Flagged as unlike": [f"{s['flagged']:.0%}" for s in shifts],
                "Unlikeness AUROC against clean": [s.get("detection_auroc") for s in shifts],
                "Verdict": [VERDICTS[s["verdict"]] for s in shifts],
            },
            hide_index=True,
            column_config={c: st.column_config.NumberColumn(format="%.3f") for c in ("Macro AUC", "ECE")}
            | {
                c: st.column_config.NumberColumn(format="%.2f")
                for c in ("Attention pointing (macro)", "Unlikeness AUROC against clean")
            },
        )
        silent = [s for s in shifts if s["verdict"] == "fails silently"]
        if silent:
            worst = [(s, min(s["auc"], key=s["auc"].get)) for s in silent]  # each shift's least accurate finding
            st.warning(
                "**Where this model is wrong more often and nothing on screen says so:** "
                + "; ".join(
                    f"{s['shift']} ({names.get(f, f).lower()}: AUC {s['auc'][f]:.2f}, pointing {s['pointing'][f]:.2f})"
                    for s, f in worst
                )
                + ". These scans are not called unlike the training data, so the Review page shows their output.",
                icon=":material/warning:",
            )
        st.caption(
            f"{robustness['cases_per_shift']} cases of {robustness['data']} per shift, each through the app's own "
            f"path. A shift holds when macro AUC ≥ {HOLDS_AUC} and pointing ≥ {HOLDS_POINTING}; it is flagged when "
            f"at least {FLAGGED_SHARE:.0%} of its images are called unlike the training data, so the page withholds "
            "their output. Otherwise it fails silently: the model is wrong more often and nothing on screen says so. "
            "Means over findings are macro means: each finding counts once."
        )
        with st.expander("Per finding"):
            st.dataframe(
                {"Shift": [s["shift"] for s in shifts for _ in s["auc"]],
                 "Finding": [names.get(f, f) for s in shifts for f in s["auc"]],
                 "AUC": [v for s in shifts for v in s["auc"].values()],
                 "Attention pointing": [v for s in shifts for v in s["pointing"].values()]},
                hide_index=True,
            )  # fmt: skip
            st.caption(
                "How often one finding's attention peaks on another finding present in the same image, and off "
                "its own: "
                + ", ".join(
                    f"{' on '.join(names.get(f, f) for f in pair.split(' -> '))} {rate:.0%}"
                    for pair, rate in robustness["capture_rates"].items()
                )
                + "."
            )

    if training.get("history"):
        st.markdown("#### Training")
        st.line_chart(
            {"Epoch": [h["epoch"] for h in training["history"]],
             "Validation macro AUC": [h["val_macro_auc"] for h in training["history"]]},
            x="Epoch",
            x_label="Epoch",
            y_label="Validation macro AUC",
        )  # fmt: skip

    with st.expander("Preprocessing"):
        st.json(asdict(card.preprocessing))
