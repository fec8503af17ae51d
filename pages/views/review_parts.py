"""Parts of the Review page's layout, each laying out one section from what ``medattn.screens.review_page``
decides. Not a page: Streamlit runs only the scripts ``app.py`` names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import altair as alt
import numpy as np
import streamlit as st

from medattn.errors import PacsError, StoreError
from medattn.explain import EXPLAINERS
from medattn.explain.overlay import COLORMAPS, Layers, LayerSettings, blend, layers
from medattn.model.predictor import Heatmap, Prediction, Predictor
from medattn.pacs.dicomweb import Pacs
from medattn.pacs.outputs import ResultObjects
from medattn.review.report import FORMATS, ReportContent, render_report
from medattn.review.workspace import Case, Workspace
from medattn.scan.resizing import resize, shrink
from medattn.screens import review_page
from medattn.screens.review_page import Name
from pages.viewer import opacity as opacity_chosen
from pages.views import shared

SMALL_SIDE = 320  # the side-by-side maps
SCALES = {"model-wide": "Model-wide (the same for every scan)", "peak": "Relative to this map's peak"}


def scan_picker(workspace: Workspace, samples: dict[str, Path]) -> None:
    """The uploader, the sample picker and, once several scans are open, the scan picker (call inside
    ``st.sidebar``). The sample picker shows "—" again once another scan is on screen."""
    shared.uploader("Upload scans", key="upload")
    opened = st.session_state.get("opened_sample")  # (label, case key) of the sample last opened here
    if opened and opened[1] != workspace.current:
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


def case_steps(workspace: Workspace, where) -> None:
    """Previous and next case (keys Shift+N and N), in the Worklist's order: a reader goes through a list
    without going back to it."""
    back, forward = workspace.beside(-1), workspace.beside(1)
    if back is None and forward is None:
        return
    left, right, _ = where.columns([1, 1, 2])
    left.button(
        "Previous case", icon=":material/arrow_back:", shortcut="Shift+N", disabled=back is None,
        on_click=workspace.select, args=(back,), key="previous-case", width="stretch",
    )  # fmt: skip
    right.button(
        "Next case", icon=":material/arrow_forward:", shortcut="N", disabled=forward is None,
        on_click=workspace.select, args=(forward,), key="next-case", width="stretch",
    )  # fmt: skip


def window_setting(case: Case, frame: int) -> tuple[float, float] | None:
    """The grey-scale window (level, width) from the presets or typed in the sidebar; None for colour."""
    if case.scan.is_colour:
        return None
    presets = shared.presets(case.key, frame, case)
    tag = case.key[:12]
    with st.sidebar:
        preset = st.selectbox("Window", list(presets), key=shared.kept(f"window-{tag}"))
        centre, width = presets[preset]
        with st.expander("Window level and width"):
            centre = st.number_input("Level (centre)", key=shared.kept(f"centre-{tag}-{preset}", float(centre)))
            width = st.number_input("Width", min_value=1e-3, key=shared.kept(f"width-{tag}-{preset}", float(width)))
    return centre, width


def ground_truth(view: ViewSettings, case: Case, shown: str, name: Name, size: tuple[int, int]) -> np.ndarray | None:
    """Where the finding truly lies (bool, ``size``) once the reader asks for a shipped sample's ground truth;
    None for any other scan, or when the finding is absent."""
    sample = shared.sample_name(case)
    if not sample or not view.truth_slot.toggle(
        "Show the ground truth (synthetic sample)", key=shared.kept("ground-truth")
    ):
        return None
    truth = review_page.ground_truth(shared.sample_truth()[sample], shown, name)
    st.caption(truth.caption)
    if truth.region is None:
        return None
    return resize(truth.region.astype(np.float32), *size) > 0.5


def pixels_withheld(case: Case) -> bool:
    """Whether the reports and the shareable DICOM results leave the pictures out: the file says text is burned
    into its pixels, or does not say and its modality often draws it there, until the reader has looked."""
    text = case.scan.burned_in_annotation
    if text is True:
        st.warning("This file says text is burned into its pixels, which may identify the patient: the reports "
                   "and the shareable DICOM results leave the pictures out.")  # fmt: skip
        return True
    if text is None:
        st.warning(
            f"This file ({case.scan.modality}) does not say whether text is burned into its pixels, and such images "
            "often carry the patient's name there: the reports and the shareable DICOM results leave the pictures "
            "out until you have looked."
        )
        looked = "I have looked: no text in these pixels identifies the patient"
        return not st.toggle(looked, key=f"pixels-checked-{case.key[:12]}")
    return False


def report_downloads(report: ReportContent, key: str) -> None:
    """The report of what is on screen as PNG and PDF, drawn only when clicked."""
    st.session_state.report = report  # what the downloads draw, kept in this session's memory only
    for column, file_format in zip(st.columns(2), FORMATS, strict=True):
        column.download_button(
            f"Download report ({file_format.upper()})",
            data=partial(render_report, report, file_format),
            file_name=f"medattn-report-{key[:12]}.{file_format}",
            mime=FORMATS[file_format],
            on_click="ignore",
            key=f"report-{file_format}",
        )


@dataclass(frozen=True)
class ViewSettings:
    """The sidebar's view settings; the finding and ground-truth pickers are placeholders filled once the
    prediction is known, kept beside the others so that the image starts high on a laptop's screen."""

    finding_slot: object
    truth_slot: object
    method: str
    opacity: float
    colormap: str
    scale: str
    threshold: float
    outlined: int  # percent of the image

    @property
    def model_wide(self) -> bool:
        return self.scale == "model-wide"

    def layers(self, levels: np.ndarray) -> Layers:
        """The overlay of ``levels`` (colour levels in [0, 1]) as these settings draw it, before its opacity."""
        return layers(levels, self.colormap, self.threshold, self.outlined / 100)

    @property
    def layer_settings(self) -> LayerSettings:
        """How the overlay is drawn, as ``layer`` and ``blend`` take it."""
        return LayerSettings(
            opacity=self.opacity, colormap=self.colormap, threshold=self.threshold, contour_fraction=self.outlined / 100
        )


def view_settings(predictor: Predictor) -> ViewSettings:
    """The view settings, laid out in the sidebar (call inside ``st.sidebar``)."""
    finding_slot, truth_slot = st.empty(), st.empty()
    method = st.selectbox(
        "Explanation", list(EXPLAINERS), format_func=lambda m: EXPLAINERS[m].title, key=shared.kept("method")
    )
    opacity = opacity_chosen("viewer", 0.45)  # the viewer's own control: it redraws without the page
    colormap = st.selectbox("Colour map", list(COLORMAPS), key=shared.kept("colormap"))
    scale = st.radio(
        "Map scale",
        list(SCALES),
        format_func=SCALES.get,
        key=shared.kept("scale"),
        help="Attention is a share of the model's focus, so it has a scale that means the same on every scan. "
        "The other methods have none: they are always shown relative to their own peak.",
    )
    threshold = st.slider(
        "Hide heat below",
        0.0,
        0.9,
        step=0.05,
        key=shared.kept("threshold", 0.0),
        help="A level on the colour bar, from 0 at its left",
    )
    outlined = st.slider(
        "Outline the hottest % of the image", 0, 30, step=1, key=shared.kept("outline", 0), help="0 draws none"
    )
    st.caption(f"Model: {predictor.name}")
    st.caption(predictor.card.intended_use)
    return ViewSettings(finding_slot, truth_slot, method, opacity, colormap, scale, threshold, outlined)


def side_by_side(
    image,
    maps: dict[str, Heatmap],
    methods: dict[str, Heatmap],
    view: ViewSettings,
    prediction: Prediction,
    shown: str,
    name: Name,
) -> None:
    """Every finding's map with the chosen method, then every method's map of the finding shown, small."""
    small = shrink(image, SMALL_SIDE)

    def thumbnails(heatmaps: dict[str, Heatmap], label) -> None:
        for column, (item, heatmap) in zip(st.columns(len(heatmaps)), heatmaps.items(), strict=True):
            small_levels = resize(review_page.on_scale(heatmap, view.model_wide).levels, *small.shape[:2])
            column.image(blend(small, small_levels, **view.layer_settings), caption=label(item))

    thumbnails(maps, lambda c: review_page.thumbnail_caption(prediction, view.method, c, name))
    thumbnails(methods, lambda m: f"{EXPLAINERS[m].title} — {name(shown)}")


def probabilities(prediction: Prediction, name: Name) -> None:
    """Every finding's calibrated probability as a bar beside its threshold, and as a table; greyed and
    marked where the scan is unlike the training data."""
    st.markdown("#### Probabilities")
    warning = prediction.unlikeness_warning
    if warning:
        st.error(f"Not meaningful for this scan: {warning}", icon=":material/block:")
    rows = review_page.probability_rows(prediction, name)
    st.vega_lite_chart(spec=_probability_chart(rows, muted=bool(warning)), width="stretch")
    st.caption("Calibrated probability per finding; the orange mark is the finding's decision threshold.")
    st.dataframe(review_page.probability_table(prediction, name), hide_index=True)


@st.cache_data(max_entries=64, show_spinner=False)
def _probability_chart(rows: list[dict], muted: bool) -> dict:
    """The probabilities' Vega-Lite spec, built once per prediction: Altair built and validated it in about 15 ms
    on every rerun of the page (a verdict, an opacity change). ``muted``: grey bars, for a scan unlike the
    training data."""
    order = [row["Finding"] for row in rows]  # highest first, as in the table below
    # A band of 44 px per finding, five ticks, and a threshold mark inside its own row in a colour that reads
    # on the light and the dark theme (black vanished on the dark one).
    bars = alt.Chart(alt.Data(values=rows)).encode(
        y=alt.Y("Finding:N", sort=order, title=None, axis=alt.Axis(labelLimit=220, labelFontSize=13))
    )
    axis = alt.Axis(format="%", values=[0, 0.25, 0.5, 0.75, 1], grid=True)
    chart = (
        bars.mark_bar(color="#9ca3af" if muted else "#2563eb", size=22).encode(
            x=alt.X("Probability:Q", scale=alt.Scale(domain=[0, 1]), axis=axis, title=None),
            tooltip=["Finding:N", alt.Tooltip("Probability:Q", format=".1%"), "Call:N"],
        )
        + bars.mark_tick(color="#f59e0b", thickness=4, size=30).encode(x="Threshold:Q")
    ).properties(height=alt.Step(44))  # each finding's band, not the whole chart: ticks stay in their row
    return chart.to_dict()


def dicom_results(
    results: Callable[..., ResultObjects], key: str, unlike: bool, pacs: Pacs | None, from_pacs: bool
) -> None:
    """The DICOM results of what is on screen: two downloads (as made, and de-identified for sharing),
    made only when clicked, and a store into the PACS where one is configured and the scan was opened from it.
    ``results(for_sharing=...)`` makes them."""
    st.caption(
        "A parametric map of the map on screen, a segmentation of what the overlay colours for each finding the "
        "model calls, a structured report of the findings (with your latest saved verdicts) and the overlay as a "
        "secondary capture, each in its own new series of this study. The shareable copy is de-identified (DICOM "
        "PS3.15 Basic Profile) and names no reader."
    )
    left, right = st.columns(2)
    left.download_button(
        "Download DICOM results (ZIP)", data=lambda: results().zip(), file_name=f"medattn-dicom-{key[:12]}.zip",
        mime="application/zip", on_click="ignore", key="dicom-results",
    )  # fmt: skip
    right.download_button(
        "Download for sharing, de-identified (ZIP)", data=lambda: results(for_sharing=True).zip(),
        file_name=f"medattn-dicom-shared-{key[:12]}.zip", mime="application/zip", on_click="ignore",
        key="dicom-results-shared",
    )  # fmt: skip
    if pacs is not None and not from_pacs:
        st.caption(
            "Results are stored into the PACS only for a scan opened from it on the Worklist: an uploaded file can "
            "name any patient's study."
        )
    if pacs is None or not from_pacs:
        return
    if not st.button(f"Store the results in the PACS ({pacs.server})", key="store-in-pacs"):
        return
    with st.spinner("Making the DICOM results and storing them…"):
        try:
            made = results()
            pacs.store(made.datasets)
        except PacsError as error:
            shared.show_error(error)
            return
    if (store := shared.review_store()) is not None:
        try:
            store.audit(shared.user().named(st.session_state.get("reviewer_name", "")), "results stored in PACS", key)
        except StoreError as error:  # stored all the same: the page says the log missed it
            shared.show_error(error)
    marked = " Each is marked not meaningful: the scan is unlike the training data." if unlike else ""
    st.success(f"{made.stored_summary(pacs.server)}{marked} " + " ".join(made.left_out))
