"""Model: the chosen model's card — what it was trained on and how well it does."""

from pages.views import shared  # first: it imports the heavy libraries once, for every session

# isort: split
from dataclasses import asdict

import altair as alt
import streamlit as st

from medattn.errors import StoreError
from medattn.model.card import held_out_wording
from medattn.review.marks import agreement_summary
from medattn.screens import model_page

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
    st.subheader(f"{card.name} · version {card.version}")
    st.write(model_page.summary(card))
    st.info(card.intended_use)

    if card.metrics:
        for column, (label, value) in zip(st.columns(3), model_page.headline_figures(card), strict=False):
            column.metric(label, value, help=model_page.HEADLINE_HELP[label])
        st.dataframe(model_page.per_finding_rows(card), hide_index=True)
        st.caption(held_out_wording(card.metrics))
        roc, calibration = st.columns(2)
        if points := model_page.roc_points(card):
            roc.markdown("##### ROC curves")
            roc.altair_chart(
                alt.Chart(alt.Data(values=points))
                .mark_line(interpolate="step-after")
                .encode(
                    x="False-positive rate:Q",
                    y="True-positive rate:Q",
                    # One finding per legend row, never cut ("Pulr" for "Pulmonary nodule (AUC …)").
                    color=alt.Color(
                        "Finding:N", scale=DISTINCT, legend=alt.Legend(orient="bottom", columns=1, labelLimit=0)
                    ),
                ),
                width="stretch",
            )
        if bins := model_page.reliability_bins(card):
            calibration.markdown("##### Reliability, before and after calibration")
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
        tables = model_page.confusion_tables(card)
        for column, (finding, table) in zip(st.columns(len(tables)), tables.items(), strict=True):
            column.markdown(f"**{finding}**")
            column.dataframe(table, hide_index=True)

    # Tables, not data grids, from here on: a grid cut the last columns at 1280 px, a table wraps them.
    if model_page.explanation_figures(card):
        st.markdown("#### Explanation quality")
        st.table(model_page.explanation_table(card), hide_index=True)
        if better := model_page.better_than_attention(card):
            st.warning(better, icon=":material/info:")
        st.caption(model_page.explanation_caption(card))
        with st.expander("Per finding"):
            st.table(model_page.explanation_table_per_finding(card), hide_index=True)
        with st.expander("Model-randomisation sanity check"):
            st.table(model_page.randomisation_table(card), hide_index=True)
            st.caption("Mean rank correlation of each map with the trained model's map, as layers are re-initialised.")

    if elsewhere := model_page.localisation_elsewhere(card):
        st.markdown("#### Localisation on other data, beside the model's own")
        st.table(elsewhere, hide_index=True)
        st.caption(model_page.localisation_elsewhere_caption())

    agreed, store = {}, shared.review_store()
    if store is not None:
        try:
            agreed = agreement_summary(store.reader_agreements(card.name, card.version))
        except StoreError as error:  # the card is still shown
            shared.show_error(error)
    if agreed:
        st.markdown("#### Agreement with readers' marks")
        st.table(model_page.agreement_rows(card, agreed), hide_index=True)
        st.caption(
            "Every mark readers drew on the Review page with this model's maps, each map measured against the mark "
            "as the benchmark measures it against a true mask: pointing is the share of marks holding the map's "
            "peak, mass the mean share of the map's heat inside the mark. Each mark counts once. A reader's mark "
            "is not ground truth: agreement says how often the map points where the reader looked."
        )

    if card.robustness:
        st.markdown("#### Where the model holds, and where it does not")
        st.table(model_page.shift_table(card), hide_index=True)
        if silent := model_page.silent_failures(card):
            st.warning(silent, icon=":material/warning:")
        st.caption(model_page.shift_caption(card))
        with st.expander("Per finding"):
            st.table(model_page.shift_table_per_finding(card), hide_index=True)
            st.caption(model_page.capture_caption(card))
        if curve := model_page.risk_coverage(card):
            st.markdown("#### What the gate withholds: error against the share of images shown")
            st.altair_chart(
                alt.Chart(alt.Data(values=curve))
                .mark_line(point=True)
                .encode(
                    x=alt.X("Share of images shown:Q", title="Share of images shown, most familiar first",
                            axis=alt.Axis(format="%")),
                    y=alt.Y("Error among them:Q", title="Called wrongly",
                            axis=alt.Axis(format="%")),
                    color=alt.Color(
                        "Shift family:N", scale=DISTINCT, legend=alt.Legend(orient="bottom", columns=4, labelLimit=0)
                    ),
                    tooltip=["Shift family:N", alt.Tooltip("Share of images shown:Q", format=".0%"),
                             alt.Tooltip("Error among them:Q", format=".1%")],
                ),
                width="stretch",
            )  # fmt: skip
            st.caption(model_page.gate_caption(card))
        if (stability := model_page.stability_table(card))["Finding"]:
            st.markdown("#### Does the map stay put?")
            st.table(stability, hide_index=True)
            st.caption(model_page.stability_caption(card))

    if (curve := model_page.training_curve(card))["Epoch"]:
        st.markdown("#### Training")
        st.line_chart(curve, x="Epoch", x_label="Epoch", y_label="Validation macro AUC")

    with st.expander("Preprocessing"):
        st.json(asdict(card.preprocessing))
