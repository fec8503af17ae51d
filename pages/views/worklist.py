"""Worklist: a batch of scans scored together, the most suspicious first; open any of them in Review."""

from __future__ import annotations

from pages.views import shared  # first: it imports the heavy libraries once, for every session

# isort: split
import streamlit as st

from medattn.assets import all_samples
from medattn.errors import PacsError, StoreError
from medattn.pacs.outputs import dicom_bytes
from medattn.review.text import escape_markdown
from medattn.screens import review_page

with shared.page("Worklist"):
    workspace = shared.workspace()
    model_dir = shared.chosen_model_dir()
    predictor = shared.predictor(model_dir)

    shared.uploader("Add scans", key="worklist-upload")
    if st.button("Add the sample cases", key="add-samples"):
        for path in all_samples().values():
            workspace.add(path.name, path.read_bytes())

    pacs = shared.pacs()
    if pacs is not None:
        # Open while nothing is being worked on or a listing is on screen: it folded away when a second study
        # was opened from it, since opening one filled the workspace.
        listed = bool(st.session_state.get("pacs_studies"))
        with st.expander(f"Studies on the PACS ({pacs.server}, DICOMweb)", expanded=listed or not workspace.cases):
            modality = st.text_input("Modality (empty: every study)", key="pacs-modality", max_chars=16)
            if st.button("List studies", key="pacs-list"):
                try:
                    st.session_state.pacs_studies = pacs.studies(
                        shared.secret(), {"ModalitiesInStudy": modality.strip()} if modality.strip() else None
                    )
                except PacsError as error:
                    shared.show_error(error)
            studies = st.session_state.get("pacs_studies", [])
            if studies:
                st.caption("Each study is known here by a keyed hash of its UID; opening it adds its images below.")
            for study in studies:
                name, date, modalities, count, action = st.columns([3, 2, 2, 2, 2], vertical_alignment="center")
                name.text(f"Study {study.study_key[:12]}")
                date.text(study.date)
                modalities.text(study.modalities)
                count.text(f"{study.instances} image{'' if study.instances == 1 else 's'}")
                if action.button("Open", key=f"pacs-open-{study.study_key[:12]}"):
                    try:
                        with st.spinner("Opening the study…"):
                            for number, image in enumerate(pacs.images(study.study_uid), 1):
                                workspace.add(
                                    f"Study {study.study_key[:12]}, image {number}", dicom_bytes(image), from_pacs=True
                                )
                    except PacsError as error:
                        shared.show_error(error)

    if not workspace.cases:
        st.info("Add scans to score them as one batch.")
        st.stop()

    readable = workspace.readable
    progress = st.progress(0.0, text="Scoring…")
    predictions = {}
    for done, case in enumerate(readable, start=1):
        predictions[case.key] = shared.prediction(case.key, model_dir, 0, case)
        workspace.trim()  # a case decoded to score it is released at once: one batch never holds every image
        progress.progress(done / len(readable), text=f"Scored {done} of {len(readable)}")

    store = shared.review_store()
    scan_keys = {case.key: shared.scan_key_of(case) for case in readable}
    reviewed = None  # unknown, unless the store answers: the list itself does not depend on it
    if store is not None:
        try:
            reviewed = store.reviewed(list(scan_keys.values()))
        except StoreError as error:
            shared.show_error(error)

    st.caption(
        "Most suspicious first: ordered by each scan's highest finding probability. Scans unlike the model's "
        "training data come last, least unlike first: their output is withheld, as on the Review page."
    )
    widths = [1, 3, 4, 2, 2]
    # Four headings over five columns: the buttons' column has none ("****" is Markdown for a horizontal rule).
    for column, title in zip(st.columns(widths), ("Scan", "File", "Model's findings", "Review"), strict=False):
        column.markdown(f"**{title}**")
    for case in workspace.ranked(predictions):
        prediction = predictions[case.key]
        thumbnail, name, finding, status, action = st.columns(widths, vertical_alignment="center")
        thumbnail.image(case.thumbnail)
        name.text(case.name)  # the user's file name: shown as plain text
        finding.text(review_page.findings_summary(prediction, predictor.display_name))
        if reviewed is None:
            status.text("Review status unknown")
        else:
            status.text("Reviewed" if scan_keys[case.key] in reviewed else "Not reviewed")
        if action.button("Open in Review", key=f"open-{case.key[:12]}"):
            workspace.select(case.key)
            st.switch_page("pages/views/review.py")

    for case in workspace.cases.values():
        if case.error:
            with st.container(border=True):
                st.text(case.name)  # the user's file name: plain text, never Markdown
                st.error(escape_markdown(case.error))
