"""Reader study: readers read a case set blind to the truth, once per arm; the results compare the arms."""

from __future__ import annotations

from pages.views import shared, study_parts  # first: it imports the heavy libraries once, for every session

# isort: split
import time
from dataclasses import replace

import numpy as np
import streamlit as st

from medattn import installation
from medattn.access import COORDINATOR, may_read
from medattn.errors import MedattnError
from medattn.explain import EXPLAINERS, map_of
from medattn.explain.overlay import layer_shape, layers
from medattn.review.marks import agreements_with
from medattn.review.text import escape_markdown
from medattn.scan.resizing import resize
from medattn.screens import study_page
from medattn.screens.viewer import ViewerImage
from medattn.study.design import Arm
from medattn.study.records import Reading, Study, StudyStore
from pages.viewer import opacity, viewer

MODES = ("Read", "Results", "Set up a study")
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
    who = shared.user()
    # Setting up a study and seeing its results are a coordinator's; a reader of a shared app only reads.
    modes = MODES if who.may(COORDINATOR) else MODES[:1]
    mode = st.radio("What to do", modes, horizontal=True, key="study-mode", label_visibility="collapsed")
    if mode == "Set up a study":
        study_parts.set_up(records, predictor)
        st.stop()

    studies = records.studies()
    if mode == "Read":  # a signed-in user reads only the studies they are enrolled in
        studies = [s for s in studies if may_read(who, s.enrolled)]
    if not studies:
        st.info(escape_markdown(study_page.no_study_wording(who, reading=mode == "Read")))
        st.stop()
    chosen = st.selectbox("Study", [s.id for s in studies], format_func={s.id: s.name for s in studies}.get)
    study = next(s for s in studies if s.id == chosen)
    cache_key = f"{study.id}-{study.created_at.isoformat()}"  # ids repeat across stores; this pair does not
    images, pixels, truth, masks = case_set(cache_key, study, records)

    if mode == "Results":
        study_parts.results(study, records, truth, masks, name)
        st.stop()
    if study.closed_at is not None:
        st.info("This study is closed: it takes no more readings.")
        st.stop()

    if who.verified:  # the signed-in identity: no one reads as someone else by typing their name
        reader = who.label
        st.caption(f"Reading as {escape_markdown(reader)}")
    else:
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
    reading_key = installation.reading_key(shared.secret(), study.id, position, case_position, arm_name)
    shown_at = st.session_state.setdefault(f"shown-{reading_key}", time.time())

    prediction, maps = model_output(
        cache_key, case_position, model_dir, arm.overlay, pixels[case_position], study.findings
    )
    screen = study_page.reading_screen(arm, prediction, study.findings, name)
    # Every arm shows the scan in the same viewer, at the same size, with the same controls: the maps of an arm
    # that has them lie over it, one finding at a time. (The control arm showed the scan at 512 px and the
    # attention arm a 240 px one beside its maps: image size confounded what the study measures.)
    on_the_scan, beside = st.columns([3, 2])
    overlay = None
    shown = ViewerImage.of_picture(image, reading_key[:12])
    marking = shared.marking(reading_key, "study-viewer", shown, list(study.findings), name, None)
    with beside:
        if screen.withheld:
            st.error(f"The model's output is withheld: {escape_markdown(screen.withheld)}")
        if screen.captions:
            finding = st.radio("The map shown", list(screen.captions), format_func=name, key=f"map-{reading_key}")
            st.caption(screen.captions[finding])
            overlay = layers(resize(maps[finding], *layer_shape(image.shape)))
        if screen.probabilities:
            st.markdown(screen.probabilities)
        marks = shared.mark_controls(reading_key, list(study.findings), name)
    with on_the_scan:
        chosen = opacity("study-viewer", shown.opacity)  # as the reader left the viewer's slider
        viewer(replace(shown, overlay=overlay, marking=marking, opacity=chosen), "study-viewer", "screen")
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
