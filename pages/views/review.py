"""Review: one scan, where the model looked, what it found, and the reviewer's verdict."""

from __future__ import annotations

from pages.views import review_parts, shared  # shared first: it imports the heavy libraries once

# isort: split
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np
import streamlit as st

from medattn.assets import all_samples
from medattn.benchmark import FINDINGS
from medattn.errors import PacsError, ReviewError, StoreError
from medattn.explain import EXPLAINERS
from medattn.explain.overlay import TRUTH_COLOUR, blend, colour_bar, outline
from medattn.pacs.deidentify import results_for_sharing
from medattn.pacs.outputs import ResultObjects, build_results, scored_image
from medattn.review.marks import agreements_with
from medattn.review.report import FORMATS, render_report
from medattn.review.store import VERDICTS, Review
from medattn.review.text import escape_markdown
from medattn.scan.cine import CINE_RATE
from medattn.scan.resizing import resize
from medattn.screens import review_page

HOW_TO_READ = Path(__file__).resolve().parents[2] / "docs" / "how-to-read.md"  # a page of the docs site too

with shared.page("Attention review"):
    workspace = shared.workspace()
    model_dir = shared.chosen_model_dir()
    predictor = shared.predictor(model_dir)
    samples = all_samples()

    with st.sidebar:
        shared.uploader("Upload scans", key="upload")
        opened = st.session_state.get("opened_sample")  # (label, case key) of the sample last opened here
        if opened and opened[1] != workspace.current:  # another scan is on screen now: the picker says so
            st.session_state.sample, opened = "—", None
        sample = st.selectbox("…or open a sample case", ["—", *samples], key="sample")
        if sample != "—" and (opened is None or opened[0] != sample):
            opened = (sample, workspace.add(samples[sample].name, samples[sample].read_bytes()).key)
        st.session_state.opened_sample = opened
        if len(workspace.cases) > 1:
            names = {key: case.name for key, case in workspace.cases.items()}
            st.session_state["scan-choice"] = workspace.current  # follows uploads, samples and the Worklist
            st.selectbox(
                "Scan", list(names), format_func=names.get, key="scan-choice",
                on_change=lambda: workspace.select(st.session_state["scan-choice"]),
            )  # fmt: skip
        st.divider()
        with st.popover("How to read this screen", icon=":material/help:", width="stretch"):
            st.markdown(HOW_TO_READ.read_text())
        view = review_parts.view_settings(predictor)

    case = workspace.current_case
    if case is None:
        st.info("Upload a scan or open a sample case to begin.")
        st.stop()
    if case.error:
        shared.show_error(f"This file cannot be shown. {case.error}")  # our message: no file text
        st.stop()
    scan = case.scan

    frame, cine = 0, False
    if scan.frame_count > 1:
        frame = st.slider("Frame", 1, scan.frame_count, 1, key=f"frame-{case.key[:12]}") - 1
        cine = st.toggle("Play all frames as a loop (cine)", key=f"cine-{case.key[:12]}")
    window = None
    if not scan.is_colour:
        presets = shared.presets(case.key, frame, case)
        with st.sidebar:
            preset = st.selectbox("Window", list(presets), key=f"window-{case.key[:12]}")
            centre, width = presets[preset]
            with st.expander("Window level and width"):
                centre = st.number_input("Level (centre)", value=float(centre), key=f"centre-{case.key[:12]}-{preset}")
                width = st.number_input(
                    "Width", value=float(width), min_value=1e-3, key=f"width-{case.key[:12]}-{preset}"
                )
            window = (centre, width)

    prediction = shared.prediction(case.key, model_dir, frame, case)
    warning = prediction.unlikeness_warning
    shown_anyway = False
    if warning:
        st.error(warning, icon=":material/block:")
        shown_anyway = st.toggle(
            "Show the model's output anyway", key=f"reveal-{case.key[:12]}",
            help="For study only: every number stays marked as not meaningful.",
        )  # fmt: skip
    withheld = bool(warning) and not shown_anyway
    name = predictor.display_name
    ranked = review_page.ranked(prediction)

    image, image_png = shared.displayed(case.key, frame, window, case)

    def show_original(where) -> None:
        if cine:
            with st.spinner(f"Building a loop of {scan.frame_count} frames…"):
                loop = shared.cine(case.key, window, case)
            where.image(loop, caption=f"All {scan.frame_count} frames, {CINE_RATE:g} per second", width="stretch")
        else:
            where.image(image_png, caption="Original", width="stretch")  # lossless; the overlay may be JPEG

    if withheld:
        st.info(
            "The findings, probabilities and heatmaps are withheld: the model was not built for images like "
            "this one, so its answer would only mislead. You can still view the scan and record your review."
        )
        show_original(st)
    else:
        shown = view.finding_slot.selectbox(
            "Heatmap for finding", ranked, format_func=name, key=f"shown-{case.key[:12]}"
        )
        st.subheader(review_page.headline(prediction, name))
        with st.spinner(f"Computing {EXPLAINERS[view.method].title}…"):
            heatmap = shared.explanation(case.key, model_dir, frame, view.method, shown, case)
        scaled = review_page.on_scale(heatmap, view.model_wide)
        levels = scaled.levels
        diffuse = review_page.diffuse_notice(prediction, view.method, shown, name)
        if diffuse:
            st.info(diffuse, icon=":material/blur_on:")
            if not st.toggle("Paint the diffuse map anyway", key=f"diffuse-{case.key[:12]}"):
                levels = np.zeros_like(levels)
        levels_on_image = resize(levels, *image.shape[:2])
        overlay = blend(image, levels_on_image, view.opacity, view.colormap, view.threshold, view.outlined / 100)
        explained = review_page.overlay_caption(prediction, view.method, shown, name)
        sample = shared.sample_name(case)
        if sample and view.truth_slot.toggle("Show the ground truth (synthetic sample)", key="ground-truth"):
            truth = shared.sample_truth()[sample]
            present = [predictor.display_name(f) for f, on in zip(FINDINGS, truth.labels, strict=True) if on]
            masks = dict(zip(FINDINGS, truth.masks, strict=True))
            st.caption(
                f"Ground truth of this synthetic sample: {', '.join(present) or 'no finding'}. "
                f"The green outline is where {predictor.display_name(shown)} truly lies, when present."
            )
            if shown in masks and masks[shown].any():
                overlay = outline(
                    overlay, resize(masks[shown].astype(np.float32), *overlay.shape[:2]) > 0.5, TRUTH_COLOUR
                )
        original, overlaid = st.columns(2)
        show_original(original)
        overlaid.image(overlay, caption=explained, width="stretch")
        overlaid.image(colour_bar(view.colormap, scaled.ticks, view.threshold), caption=scaled.caption, width="stretch")

        if not cine and st.toggle("Zoom and pan at full resolution", key="zoom"):
            full_size = shared.full_resolution(case.key, frame, window, case)
            review_parts.zoom_view(full_size, levels_on_image, view, explained, key=f"zoom-{case.key[:12]}")

        if st.toggle("Compare side by side: every finding's map, and every method for this finding", key="compare"):
            with st.spinner("Computing every map…"):
                maps = {c: shared.explanation(case.key, model_dir, frame, view.method, c, case) for c in ranked}
                methods = {m: shared.explanation(case.key, model_dir, frame, m, shown, case) for m in EXPLAINERS}
            review_parts.side_by_side(image, maps, methods, view, prediction, shown, name)

        unchecked = review_page.unchecked_reason(prediction, levels.any(), shown)
        if unchecked:
            st.caption(unchecked)
        else:
            with st.spinner("Checking whether the model relies on the highlighted region…"):
                check = shared.faithfulness(case.key, model_dir, frame, view.method, shown, case)
            verdict = review_page.faithfulness_verdict(check, name(shown))
            if verdict.relies:
                st.success(verdict.text, icon=":material/check_circle:")
            else:
                st.warning(verdict.text, icon=":material/help:")

        review_parts.probabilities(prediction, name)

    with st.expander("Scan details (de-identified)"):
        # Plain text, never Markdown: a file's own strings must not become links or formatting.
        st.text("\n".join(f"{attribute}: {value}" for attribute, value in scan.meta.items()))

    st.markdown("#### Your review")
    store = shared.review_store()
    key = shared.scan_key_of(case)
    if "reviewer" not in st.session_state:  # widget state is dropped on other pages; the name is kept apart
        st.session_state.reviewer = st.session_state.get("reviewer_name", "")
    reviewer = st.session_state.reviewer_name = st.text_input(
        "Reviewer", key="reviewer", max_chars=200, placeholder="Your name"
    )

    scan_shape = scan.frame(frame).shape[:2]
    saved = []  # this reviewer's reviews of this scan, newest first
    if store is not None and reviewer:
        try:
            saved = store.reviews(reviewer, key)
        except StoreError as error:  # the marks are not shown again, and the page goes on
            shared.show_error(error)
    saved_marks = next((r.marks for r in saved if r.marks), None)
    marks = shared.mark_editor(
        f"{case.key[:12]}-{frame}", image, scan_shape, ranked, predictor.display_name, saved_marks,
        about="Your marks are saved with your review, in the scan's own pixel coordinates, and shown again when "
        "you reopen the scan. Each explanation's agreement with them (its peak inside your mark, and the share "
        "of its heat inside) is stored too, and summed up on the Model page.",
    )  # fmt: skip

    def measured(marks: dict[str, dict]) -> dict[str, dict[str, dict[str, float]]]:
        """Every method's agreement with each mark; none for a scan unlike the training data (no map is
        meaningful there)."""
        if warning:
            return {}
        with st.spinner("Measuring every explanation against your marks…"):
            return agreements_with(
                marks,
                lambda method, finding: shared.explanation(case.key, model_dir, frame, method, finding, case).values,
                scan_shape,
                EXPLAINERS,
            )

    with st.form(f"feedback-{case.key[:12]}-{frame}"):
        if withheld:  # nothing of the model's was seen: there is nothing to agree with, only a reading to record
            st.caption("The model's calls are withheld for this scan, so only your own reading is recorded.")
            verdicts = dict.fromkeys(ranked, "unsure")
        else:
            verdicts = {
                c: st.radio(
                    f"{name(c)}: {review_page.model_call(prediction, c)}",
                    VERDICTS,
                    index=None,  # unanswered until the reader answers: no agreement is assumed
                    format_func=str.capitalize,
                    horizontal=True,
                    key=f"verdict-{c}-{case.key[:12]}",
                )
                for c in ranked
            }
        corrected = st.multiselect(
            "Findings present, in your reading",
            ranked,
            format_func=predictor.display_name,
            key=f"corrected-{case.key[:12]}",
        )
        note = st.text_area(
            "Note", max_chars=5000, key=f"note-{case.key[:12]}", help="Do not enter patient identifiers."
        )
        submitted = st.form_submit_button("Save review", disabled=store is None)

    def save(review: Review) -> None:
        st.session_state.pop("contradicted_review", None)
        try:
            st.session_state.review_saved = (
                f"Review saved (number {store.save(review)}). It is listed on the History page."
            )
        except (ReviewError, StoreError) as error:
            st.session_state.review_saved = error

    if submitted and store is not None:
        review = Review.from_form(
            reviewer=reviewer,
            scan_key=key,
            model_name=predictor.card.name,
            model_version=predictor.card.version,
            probabilities=prediction.probabilities,
            model_labels=prediction.labels,
            unlikeness=prediction.unlikeness,
            unlikeness_limit=prediction.unlikeness_limit,
            verdicts=verdicts,
            corrected_labels=corrected,
            note=note,
            session_salt=st.session_state.session_salt,
            case_key=case.key,
            frame=frame,
            marks=marks,
        )
        try:
            review = replace(review.validated(), agreements=measured(marks))
        except ReviewError as error:
            shared.show_error(error)
        else:
            if review.contradictions():  # pointed out first: saved only if the reader confirms
                st.session_state.contradicted_review = review
            else:
                save(review)
    pending = st.session_state.get("contradicted_review")
    if pending is not None and pending.scan_key == key:
        names = ", ".join(predictor.display_name(f) for f in pending.contradictions())
        st.warning(
            f"Your reading contradicts your verdict on: {names}. Agreeing that a finding is present means "
            "listing it in your reading; disagreeing means the opposite. Correct the form and save again, "
            "or save it as it is."
        )
        st.button("Save it as it is", on_click=save, args=(pending,), key="save-contradicted")
    outcome = st.session_state.pop("review_saved", None)
    if isinstance(outcome, Exception):
        shared.show_error(outcome)
    elif outcome:
        st.success(outcome)

    report = review_page.report_content(
        prediction,
        name,
        predictor.name,
        image,
        None if withheld else (overlay, explained),
        scan_key=key,
        pixels_withheld=scan.burned_in_annotation,
    )
    if scan.burned_in_annotation:
        st.warning("This file says text is burned into its pixels, which may identify the patient: "
                   "the reports leave both pictures out.")  # fmt: skip
    st.session_state.report = report  # what the downloads draw, kept in this session's memory only
    left, right = st.columns(2)
    for column, file_format in zip((left, right), FORMATS, strict=True):
        column.download_button(
            f"Download report ({file_format.upper()})",
            data=partial(render_report, report, file_format),  # drawn only when clicked
            file_name=f"medattn-report-{key[:12]}.{file_format}",
            mime=FORMATS[file_format],
            on_click="ignore",
            key=f"report-{file_format}",
        )

    st.markdown("#### DICOM results")
    try:
        source = shared.source_header(case.key, case)
    except PacsError as error:
        st.caption(escape_markdown(error))
        st.stop()

    def results(for_sharing: bool = False) -> ResultObjects:
        """The map on screen (method, finding, threshold, scale), its overlay, the model's output and this
        reviewer's latest review, as DICOM objects; made when asked for."""
        scored = scored_image(
            predictor,
            scan,
            view.method,
            finding=None if withheld else shown,
            overlay=None if withheld else overlay,
            threshold=view.threshold,
            model_wide=view.model_wide,
            review=saved[0] if saved else None,
            shown_anyway=shown_anyway,
        )
        if for_sharing:
            return results_for_sharing(source, scored, shared.secret())
        return build_results(source, scored, reader=reviewer or None)

    review_parts.dicom_results(results, key, bool(warning), shared.pacs())
