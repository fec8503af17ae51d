"""Reader study: readers read a case set blind to the truth, once per arm; the results compare the arms."""

from __future__ import annotations

from pages.views import shared  # first: it imports the heavy libraries once, for every session

# isort: split
import time

import altair as alt
import numpy as np
import streamlit as st

from medattn.benchmark import FINDINGS
from medattn.errors import MedattnError
from medattn.explain import EXPLAINERS, map_of
from medattn.explain.overlay import blend
from medattn.review.export import table_csv
from medattn.review.marks import agreements_with
from medattn.review.text import escape_markdown
from medattn.scan.resizing import resize
from medattn.screens import study_page
from medattn.study.design import MAX_CASES, MAX_SIDE, Arm, SyntheticCaseSet, all_arms
from medattn.study.records import Reading, Study, StudyStore
from medattn.study.results import parquet_bytes, readings_table, study_results
from medattn.study.upload import labelled_cases
from medattn.training.robustness import ROBUSTNESS_SEED

MODES = ("Read", "Results", "Set up a study")
SOURCES = ("The synthetic benchmark", "A labelled folder")
CALLS = {True: "Present", False: "Absent"}


@st.cache_resource(max_entries=4, show_spinner="Loading the study's cases…")
def case_set(cache_key: str, _study: Study, _records: StudyStore) -> tuple[list, list, np.ndarray, np.ndarray | None]:
    """The study's cases, their truth and masks (``StudyStore.case_set``), once per study."""
    return _records.case_set(_study)


@st.cache_data(max_entries=64, show_spinner=False)
def model_output(cache_key: str, position: int, model_dir: str, method: str, _pixels, _findings: tuple) -> tuple:
    """The model's prediction for a study case, and ``method``'s map for each finding read ("none": no map)."""
    predictor = shared.predictor(model_dir)
    prediction = predictor.predict(_pixels)
    if method == "none":
        return prediction, {}
    return prediction, {
        finding: map_of(predictor, _pixels, finding, method, prediction).values for finding in _findings
    }


with shared.page("Reader study"):
    store = shared.review_store()
    if store is None:
        st.stop()
    records = StudyStore(store)
    model_dir = shared.chosen_model_dir()
    predictor = shared.predictor(model_dir)
    name = predictor.display_name
    mode = st.radio("What to do", MODES, horizontal=True, key="study-mode", label_visibility="collapsed")
    studies = records.studies()

    if mode == "Set up a study":
        st.markdown(
            "A study compares arms: what readers see beside the scan. Every reader reads every case once per arm, "
            "in an order of their own; arms rotate across readers so that none always comes first, and two "
            "readings of a case are always more than half a block of cases apart. Readers never see the truth."
        )
        source = st.radio("Cases from", SOURCES, horizontal=True, key="study-source")
        with st.form("study-setup"):
            title = st.text_input("Study name", max_chars=200)
            if source == SOURCES[0]:
                seed_column, size_column, count_column, prevalence_column = st.columns(4)
                seed = seed_column.number_input(
                    "Benchmark seed", 0, 2**31 - 1, ROBUSTNESS_SEED, help="A seed the model was not trained on"
                )
                size = size_column.number_input("Image size (px)", 64, MAX_SIDE, 512, step=64)
                count = count_column.number_input("Cases", 2, MAX_CASES, 20)
                prevalence = prevalence_column.slider("Share of cases with a finding", 0.05, 0.95, 0.5, 0.05)
            else:
                folder = st.file_uploader(
                    "A folder of labelled scans (DICOM, PNG, JPEG, TIFF, BMP)",
                    accept_multiple_files="directory",
                    help="With a manifest.csv (a file column and a 1/0 column per finding), or with one "
                    "sub-folder per finding (nodule/, effusion/, cardiomegaly/; normal/ for none).",
                )
            # The model's findings; a synthetic case set can only hold the benchmark's.
            offered = [c for c in predictor.classes if source != SOURCES[0] or c in FINDINGS]
            findings = st.multiselect("Findings to read", offered, default=offered, format_func=name)
            arms = st.multiselect(
                "Arms to compare (the first is the control)",
                all_arms(),
                default=["none", "attention"],
                format_func=lambda arm: Arm.parse(arm).title,
            )
            created = st.form_submit_button("Create the study")
        if created:
            model = {"name": predictor.card.name, "version": predictor.card.version, "classes": list(predictor.classes)}
            try:
                if source == SOURCES[0]:
                    case_set_asked = SyntheticCaseSet(
                        int(seed), int(size), int(count), float(prevalence), tuple(findings)
                    )
                    study = records.create(title, case_set_asked, arms, model)
                else:
                    with st.spinner("Reading the folder…"):
                        uploaded = labelled_cases({f.name: f.getvalue() for f in folder or []}, tuple(findings))
                    study = records.create_from_upload(title, uploaded, tuple(findings), arms, model)
            except MedattnError as error:
                shared.show_error(error)
            else:
                st.success(
                    f"Study created: {len(study.cases)} cases in {len(study.arms)} arms, "
                    f"{len(study.cases) * len(study.arms)} readings per reader. Readers open it under Read."
                )
        st.stop()

    if not studies:
        st.info("No study has been set up yet. Choose Set up a study above.")
        st.stop()
    chosen = st.selectbox("Study", [s.id for s in studies], format_func={s.id: s.name for s in studies}.get)
    study = next(s for s in studies if s.id == chosen)
    cache_key = f"{study.id}-{study.created_at.isoformat()}"  # ids repeat across stores; this pair does not
    images, pixels, truth, masks = case_set(cache_key, study, records)

    if mode == "Results":
        readings = records.readings(study)
        results = study_results(study, readings, truth, masks)
        for reader, share in results.incomplete_readers.items():
            st.caption(
                f"{escape_markdown(reader)} has read {share:.0%} of the study and is not counted until they finish."
            )
        if not results.complete_readers:
            st.info("No reader has finished the study yet.")
            st.stop()
        st.markdown(study_page.readers_line([escape_markdown(r) for r in results.complete_readers]))
        st.table(study_page.figure_rows(results, name), hide_index=True)
        st.altair_chart(
            alt.Chart(alt.Data(values=study_page.figure_bars(results, name)))
            .mark_bar()
            .encode(
                x=alt.X(
                    "Arm:N", title=None, sort=[Arm.parse(a).title for a in study.arms], axis=alt.Axis(labelAngle=-30)
                ),
                y=alt.Y("Value:Q", scale=alt.Scale(domain=[0, 1]), title=None),
                color=alt.Color("Arm:N", legend=None),
                column=alt.Column("Figure:N", title=None, sort=["Sensitivity", "Specificity", "AUC"]),
                row=alt.Row("Finding:N", title=None),
                tooltip=["Arm:N", "Finding:N", "Figure:N", alt.Tooltip("Value:Q", format=".3f")],
            )
            .properties(width=220, height=180),
        )
        st.caption("Each bar: the readers' mean for one arm; the first arm is the control.")
        rows = study_page.comparison_rows(results, name)
        if rows:
            st.markdown(
                f"##### Does an arm change readers' AUC against the control ({Arm.parse(study.arms[0]).title})?"
            )
            st.table([row | {key: f"{row[key]:.3f}" for key in study_page.COMPARED} for row in rows], hide_index=True)
            base = alt.Chart(alt.Data(values=rows)).encode(y=alt.Y("Finding:N", title=None), color="Arm:N")
            st.altair_chart(
                base.mark_rule(strokeWidth=3).encode(
                    x=alt.X("95% CI low:Q", title="AUC difference against the control, with 95% CI"),
                    x2="95% CI high:Q",
                )
                + base.mark_point(filled=True, size=90).encode(x="AUC difference:Q")
                + alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(strokeDash=[4, 4]).encode(x="zero:Q"),
                width="stretch",
            )
            st.caption(
                "An interval that crosses the dashed line at 0 means the study cannot tell the arms apart. "
                "Obuchowski–Rockette analysis with Hillis's degrees of freedom, readers and cases random "
                "(the documentation's Reader studies page says what it assumes)."
            )
        else:
            st.caption("The comparison between arms needs at least two readers who have finished.")
        table = readings_table(study, readings, truth)
        left, right = st.columns(2)
        left.download_button(
            "Download every reading (CSV)", table_csv(table), f"study-{study.id}-readings.csv", "text/csv"
        )
        right.download_button(
            "Download every reading (Parquet)",
            parquet_bytes(table),
            f"study-{study.id}-readings.parquet",
            "application/vnd.apache.parquet",
        )
        st.stop()

    reader = st.text_input("Your name, as a reader", max_chars=200, key="study-reader")
    if not reader.strip():
        st.info("Enter your name to start reading, or to carry on where you stopped.")
        st.stop()
    try:
        position = records.join(study, reader)
    except MedattnError as error:
        shared.show_error(error)
        st.stop()
    order = study.order(position)
    done = {(r.case_position, r.arm) for r in records.readings(study, reader.strip())}
    remaining = [item for item in order if item not in done]
    st.progress(len(done) / len(order), text=f"{len(done)} of {len(order)} readings saved")
    if not remaining:
        st.success("You have read every case in every arm. Thank you.")
        st.stop()
    case_position, arm_name = remaining[0]
    arm = Arm.parse(arm_name)
    st.subheader(f"Reading {len(done) + 1} of {len(order)}")
    st.caption(f"Shown with this reading: {arm.title.lower()}.")
    image = images[case_position]
    reading_key = f"{study.id}-{position}-{case_position}-{arm_name}"
    shown_at = st.session_state.setdefault(f"shown-{reading_key}", time.time())

    prediction, maps = model_output(
        cache_key, case_position, model_dir, arm.overlay, pixels[case_position], study.findings
    )
    if (arm.overlay != "none" or arm.probabilities) and prediction.unlikeness_warning:
        st.error(f"The model's output is withheld: {escape_markdown(prediction.unlikeness_warning)}")
        arm = Arm("none", False)
    if arm.overlay == "none":
        st.image(image, width=min(image.shape[1], 640))
    else:
        for column, finding in zip(st.columns(len(study.findings) + 1), ("", *study.findings), strict=True):
            if not finding:
                column.image(image, caption="The scan", width="stretch")
                continue
            levels = resize(maps[finding], *image.shape[:2])
            # As on Review: a map of a finding the model does not call shows where it looked, not a lesion.
            absent = "" if finding in prediction.labels else " (not present — where the model looked)"
            column.image(blend(image, levels), caption=f"{EXPLAINERS[arm.overlay].title} — {name(finding)}{absent}")
    if arm.probabilities:
        st.markdown(
            "**The model's probabilities:** "
            + ", ".join(
                f"{name(f)} {prediction.probabilities[f]:.0%} (threshold {prediction.thresholds[f]:.0%})"
                for f in study.findings
            )
        )
    marks = shared.mark_editor(reading_key, image, image.shape[:2], list(study.findings), name, None)
    with st.form(f"reading-{reading_key}"):
        present, confidence = {}, {}
        for finding in study.findings:
            call, sure = st.columns([1, 2])
            present[finding] = call.radio(
                name(finding),
                (True, False),
                index=None,
                format_func=CALLS.get,
                horizontal=True,
                key=f"call-{finding}-{reading_key}",
            )
            confidence[finding] = sure.slider(
                "How sure of that call (0–100)", 0, 100, 50, key=f"sure-{finding}-{reading_key}"
            )
        submitted = st.form_submit_button("Save and show the next case")
    if submitted:
        seconds = time.time() - shown_at
        marks = {f: m for f, m in marks.items() if f in study.findings}
        agreements = {}
        if marks and not prediction.unlikeness_warning:  # every method's map against each mark, as on Review
            with st.spinner("Measuring every explanation against your marks…"):
                agreements = agreements_with(
                    marks,
                    lambda method, finding: model_output(
                        cache_key, case_position, model_dir, method, pixels[case_position], study.findings
                    )[1][finding],
                    image.shape[:2],
                    EXPLAINERS,
                )
        reading = Reading(
            study.id, reader.strip(), case_position, arm_name, present, confidence, marks, agreements, seconds
        )
        try:
            records.save(study, reading)
        except MedattnError as error:
            shared.show_error(error)
        else:
            st.rerun()
