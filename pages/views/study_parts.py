"""The Reader study page's set-up and results sections, each laid out from what ``medattn.study`` and
``medattn.screens.study_page`` decide. Not a page: Streamlit runs only the scripts ``app.py`` names."""

from __future__ import annotations

import altair as alt
import numpy as np
import streamlit as st

from medattn.benchmark import FINDINGS
from medattn.errors import MedattnError
from medattn.model.predictor import Predictor
from medattn.review.export import table_csv
from medattn.review.text import escape_markdown
from medattn.screens import study_page
from medattn.screens.review_page import Name
from medattn.study.design import MAX_CASES, MAX_SIDE, Arm, SyntheticCaseSet, all_arms, size_warnings
from medattn.study.records import Study, StudyStore, reader_addresses
from medattn.study.results import parquet_bytes, readings_table, study_results
from medattn.study.upload import labelled_cases
from medattn.training.robustness import ROBUSTNESS_SEED
from pages.views import shared

SOURCES = ("The synthetic benchmark", "A labelled folder")
READERS = "Readers' e-mail addresses, one per line"
READERS_HELP = (
    "As the hospital's sign-in gives them. Only enrolled readers see the study under Read, and Review does not "
    "show them its cases while it is open. More readers can be enrolled under Results until it closes."
)


def set_up(records: StudyStore, predictor: Predictor) -> None:
    """The form that creates a study from the synthetic benchmark or a labelled folder."""
    name = predictor.display_name
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
        enrolling = shared.user().verified  # a personal app's one user reads every study
        readers = st.text_area(READERS, help=READERS_HELP) if enrolling else ""
        created = st.form_submit_button("Create the study")
    if created:
        model = {"name": predictor.card.name, "version": predictor.card.version, "classes": list(predictor.classes)}
        by = shared.user().named("study set-up")
        try:
            if enrolling:
                reader_addresses(readers)  # refused before anything is created
            if source == SOURCES[0]:
                case_set_asked = SyntheticCaseSet(int(seed), int(size), int(count), float(prevalence), tuple(findings))
                study = records.create(title, case_set_asked, arms, model, by=by)
            else:
                with st.spinner("Reading the folder…"):
                    uploaded = labelled_cases(
                        {f.name: f.getvalue() for f in folder or []}, tuple(findings), shared.decoders().load_scan
                    )
                study = records.create_from_upload(title, uploaded, tuple(findings), arms, model, by=by)
            if enrolling and readers.strip():
                study = records.enrol(study, readers, by)
        except MedattnError as error:
            shared.show_error(error)
        else:
            st.success(
                f"Study created: {len(study.cases)} cases in {len(study.arms)} arms, "
                f"{len(study.cases) * len(study.arms)} readings per reader. Readers open it under Read."
            )
            for warning in size_warnings(study.case_mix, name):
                st.warning(warning, icon=":material/warning:")


def enrolment(study: Study, records: StudyStore) -> None:
    """Who reads an open study, and a form that enrols more."""
    enrolled = ", ".join(sorted(study.enrolled)) or "no one yet"
    st.caption(f"Enrolled readers: {escape_markdown(enrolled)}")
    with st.form(f"enrol-{study.id}", clear_on_submit=True):
        readers = st.text_area(READERS, help=READERS_HELP, key=f"enrol-readers-{study.id}")
        submitted = st.form_submit_button("Enrol these readers")
    if submitted:
        try:
            records.enrol(study, readers, shared.user().named("study coordinator"))
        except MedattnError as error:
            shared.show_error(error)
        else:
            st.rerun()


def results(study: Study, records: StudyStore, truth: np.ndarray, masks: np.ndarray | None, name: Name) -> None:
    """Each arm's figures, the comparison of every arm with the control, and every reading as a download."""
    readings = records.readings(study)
    results = study_results(study, readings, truth, masks)
    for reader, share in results.incomplete_readers.items():
        st.caption(f"{escape_markdown(reader)} has read {share:.0%} of the study and is not counted until they finish.")
    if study.closed_at is None:  # figures only once no one reads any more: seen earlier, they could steer the study
        st.info(
            f"{len(results.complete_readers)} readers have finished. The results are shown once the study is "
            "closed; a closed study takes no more readings."
        )
        if shared.user().verified:
            enrolment(study, records)
        if st.button("Close the study", key=f"close-{study.id}"):
            records.close(study, shared.user().named("study coordinator"))
            st.rerun()
        return
    if not results.complete_readers:
        st.info("No reader has finished the study yet.")
        return
    st.markdown(study_page.readers_line([escape_markdown(r) for r in results.complete_readers]))
    for warning in size_warnings(study.case_mix, name):
        st.warning(warning, icon=":material/warning:")
    st.table(study_page.figure_rows(results, name), hide_index=True)
    st.altair_chart(
        alt.Chart(alt.Data(values=study_page.figure_bars(results, name)))
        .mark_bar()
        .encode(
            x=alt.X("Arm:N", title=None, sort=[Arm.parse(a).title for a in study.arms], axis=alt.Axis(labelAngle=-30)),
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
        st.markdown(f"##### Does an arm change readers' AUC against the control ({Arm.parse(study.arms[0]).title})?")
        st.table(study_page.comparison_table(results, name), hide_index=True)
        for note in study_page.uninformative_notes(results, name):
            st.warning(note, icon=":material/help:")
        plotted = [row for row in rows if row["Analysis"] == "informative"]
        base = alt.Chart(alt.Data(values=plotted)).encode(y=alt.Y("Finding:N", title=None), color="Arm:N")
        # Only informative intervals are drawn, on the scale a difference of AUCs can have.
        scale = alt.Scale(domain=[-1, 1])
        if plotted:
            st.altair_chart(
                base.mark_rule(strokeWidth=3).encode(
                    x=alt.X("95% CI low:Q", title="AUC difference against the control, with 95% CI", scale=scale),
                    x2="95% CI high:Q",
                )
                + base.mark_point(filled=True, size=90).encode(x=alt.X("AUC difference:Q", scale=scale))
                + alt.Chart(alt.Data(values=[{"zero": 0}])).mark_rule(strokeDash=[4, 4]).encode(x="zero:Q"),
                width="stretch",
            )
        st.caption(
            "An interval that crosses the dashed line at 0 means the study cannot tell the arms apart; an "
            "analysis that is not informative is listed above and not drawn. "
            "Obuchowski–Rockette analysis with Hillis's degrees of freedom, readers and cases random "
            "(the documentation's Reader studies page says what it assumes)."
        )
    else:
        st.caption("The comparison between arms needs at least two readers who have finished.")
    table = readings_table(study, readings, truth)
    left, right = st.columns(2)
    left.download_button("Download every reading (CSV)", table_csv(table), f"study-{study.id}-readings.csv", "text/csv")
    right.download_button(
        "Download every reading (Parquet)",
        parquet_bytes(table),
        f"study-{study.id}-readings.parquet",
        "application/vnd.apache.parquet",
    )
