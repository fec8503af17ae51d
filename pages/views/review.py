"""Review: one scan, where the model looked, what it found, and the reviewer's verdict."""

from __future__ import annotations

from pages.views import review_form, review_parts, shared  # shared first: it imports the heavy libraries once

# isort: split
from dataclasses import replace
from pathlib import Path

import numpy as np
import streamlit as st

from medattn.assets import all_samples
from medattn.errors import PacsError
from medattn.explain import EXPLAINERS
from medattn.explain.faithfulness import Verdict
from medattn.explain.overlay import TRUTH_COLOUR, Layers, lay_on, layer_shape, outline
from medattn.pacs.deidentify import results_for_sharing
from medattn.pacs.outputs import ResultObjects, build_results, scored_image
from medattn.review.text import escape_markdown
from medattn.scan.cine import CINE_RATE
from medattn.scan.resizing import resize
from medattn.screens import review_page
from pages.viewer import viewer

HOW_TO_READ = Path(__file__).resolve().parents[2] / "docs" / "how-to-read.md"  # a page of the docs site too

with shared.page("Attention review", compact=True):
    workspace = shared.workspace()
    model_dir = shared.chosen_model_dir()
    predictor = shared.predictor(model_dir)
    samples = all_samples()

    with st.sidebar:
        review_parts.scan_picker(workspace, samples)
        st.divider()
        with st.popover("How to read this screen", icon=":material/help:", width="stretch"):
            st.markdown(HOW_TO_READ.read_text())
        view = review_parts.view_settings(predictor)

    # The notices above the scan go in a container of their own, and the scan's column comes next whatever
    # they hold: the viewer keeps its place on the page from the first run, so it is loaded while the reader
    # picks a file (about 350 ms of a 2k upload's first answer) and never made anew when the notices change.
    notices = st.container()
    on_the_scan, beside = st.columns([3, 2])
    case = workspace.current_case
    if case is None:
        notices.info("Upload a scan or open a sample case to begin.")
        with on_the_scan:
            viewer(None, key="viewer")
        st.stop()
    if case.error:
        with notices:
            shared.show_error(f"This file cannot be shown. {case.error}")  # our message: no file text
        st.stop()
    scan = case.scan
    review_parts.case_steps(workspace, notices)

    frame, cine = 0, False
    if scan.frame_count > 1:
        frame = notices.slider("Frame", 1, scan.frame_count, 1, key=shared.kept(f"frame-{case.key[:12]}")) - 1
        cine = notices.toggle("Play all frames as a loop (cine)", key=shared.kept(f"cine-{case.key[:12]}"))
    kept = shared.kept_from_review(case, frame)
    if kept:
        with notices:
            shared.show_error(kept)
        st.stop()
    window = review_parts.window_setting(case, frame)

    prediction = shared.prediction(case.key, model_dir, frame, case)
    warning = prediction.unlikeness_warning
    shown_anyway = False
    if warning:
        notices.error(warning, icon=":material/block:")
        shown_anyway = notices.toggle(
            "Show the model's output anyway", key=shared.kept(f"reveal-{case.key[:12]}"),
            help="For study only: every number stays marked as not meaningful.",
        )  # fmt: skip
    withheld = bool(warning) and not shown_anyway
    name = predictor.display_name
    ranked = review_page.ranked(prediction)

    image = shared.displayed(case.key, frame, window, case)
    on_screen = shared.viewer_image(case, frame)
    reviewer, saved = review_form.reader(case)
    marks_key = f"{case.key[:12]}-{frame}"
    initial = next((r.marks for r in saved if r.marks), None)
    marking = shared.marking(marks_key, "viewer", on_screen, ranked, name, initial)
    on_screen = replace(on_screen, window=window or on_screen.window, marking=marking)

    def show_scan(overlay: Layers | None = None) -> None:
        if cine:
            with st.spinner(f"Building a loop of {scan.frame_count} frames…"):
                loop = shared.cine(case.key, window, case)
            st.image(loop, caption=f"All {scan.frame_count} frames, {CINE_RATE:g} per second", width="stretch")
        else:
            viewer(replace(on_screen, overlay=overlay, opacity=view.opacity), key="viewer")

    if withheld:
        with on_the_scan:
            show_scan()
        beside.caption(
            "The findings, probabilities and heatmaps are withheld: the model was not built for images like "
            "this one, so its answer would only mislead. You can still read the scan and record your review."
        )
    else:
        shown = view.finding_slot.selectbox(
            "Heatmap for finding", ranked, format_func=name, key=shared.kept(f"shown-{case.key[:12]}")
        )
        with beside:  # the image first: the findings go beside it, not above
            st.subheader(review_page.headline(prediction, name), anchor=False)
            with st.spinner(f"Computing {EXPLAINERS[view.method].title}…"):
                heatmap = shared.explanation(case.key, model_dir, frame, view.method, shown, case)
            scaled = review_page.on_scale(heatmap, view.model_wide)
            levels, held_back = scaled.levels, False
            for reason in review_page.unpainted(prediction, view.method, shown, name):
                st.info(reason.reason, icon=":material/visibility_off:")
                if not st.toggle(reason.reveal, key=shared.kept(f"{reason.key}-{case.key[:12]}")):
                    levels, held_back = np.zeros_like(levels), True
                    break
            empty = None if held_back else review_page.empty_map_notice(heatmap, predictor.card, name)
            if empty:
                st.info(empty, icon=":material/visibility_off:")
            st.image(
                shared.colour_bar(view.colormap, scaled.ticks, view.threshold), caption=scaled.caption, width="stretch"
            )
            on_layer = layer_shape(image.shape)
            levels_on_layer = resize(levels, *on_layer)
            truth = review_parts.ground_truth(view, case, shown, name, on_layer)
            overlay = view.layers(levels_on_layer)
            if truth is not None:
                outline(overlay.lines, truth, TRUTH_COLOUR)
            overlay_layer = overlay.at(view.opacity)  # as the viewer draws it: what the report and results lay on
            unchecked = review_page.unchecked_reason(prediction, levels.any(), shown)
            steadiness = None
            if unchecked:
                st.caption(unchecked)
            else:
                with st.spinner("Checking whether the model relies on the highlighted region…"):
                    check = shared.faithfulness(case.key, model_dir, frame, view.method, shown, case)
                verdict = review_page.faithfulness_verdict(check, name(shown))
                say = {Verdict.RELIES: st.success, Verdict.CANNOT_TELL: st.info}.get(verdict.verdict, st.warning)
                icon = ":material/check_circle:" if verdict.verdict is Verdict.RELIES else ":material/help:"
                say(verdict.text, icon=icon)
                with st.spinner("Checking whether the map stays in place…"):
                    steadiness = review_page.stability_wording(
                        shared.stability(case.key, model_dir, frame, view.method, shown, case), name(shown)
                    )
                if steadiness.steady:
                    st.caption(steadiness.text)
                else:
                    st.warning(steadiness.text, icon=":material/warning:")
        explained = review_page.overlay_caption(prediction, view.method, shown, name)
        if steadiness and steadiness.in_report:
            explained = f"{explained} ({steadiness.in_report})"  # under the map, and in the report with it
        with on_the_scan:
            show_scan(overlay)
            st.caption(f"{explained}. Not drawn over the loop: switch it off to see the map." if cine else explained)
        review_parts.probabilities(prediction, name)  # the whole width: its table is cut in a column

        if st.toggle(
            "Compare side by side: every finding's map, and every method for this finding", key=shared.kept("compare")
        ):
            with st.spinner("Computing every map…"):
                maps = {c: shared.explanation(case.key, model_dir, frame, view.method, c, case) for c in ranked}
                methods = {m: shared.explanation(case.key, model_dir, frame, m, shown, case) for m in EXPLAINERS}
            review_parts.side_by_side(image, maps, methods, view, prediction, shown, name)

    with beside:
        marks = shared.mark_controls(marks_key, ranked, name)

    with st.expander("Scan details (de-identified)"):
        # Plain text, never Markdown: a file's own strings must not become links or formatting.
        st.text("\n".join(f"{attribute}: {value}" for attribute, value in scan.meta.items()))

    review_form.your_review(case, frame, prediction, predictor, model_dir, withheld, reviewer, marks)

    key = shared.scan_key_of(case)
    pictures_withheld = review_parts.pixels_withheld(case)
    report = review_page.report_content(
        prediction,
        name,
        predictor.name,
        image,
        None if withheld else (overlay_layer, explained),  # the viewer's layer: laid on when a report is drawn
        scan_key=key,
        pixels_withheld=pictures_withheld,
    )
    review_parts.report_downloads(report, key)

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
            overlay=None if withheld else lay_on(image, overlay_layer),
            threshold=view.threshold,
            model_wide=view.model_wide,
            review=saved[0] if saved else None,
            shown_anyway=shown_anyway,
        )
        if for_sharing:
            return results_for_sharing(source, scored, shared.secret(), pixels_checked=not pictures_withheld)
        return build_results(source, scored, reader=reviewer or None)

    review_parts.dicom_results(results, key, bool(warning), shared.pacs(), case.from_pacs)
