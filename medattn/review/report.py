"""A one-page report of a reviewed scan, as PNG or PDF: image, overlay, probabilities, model, notice.

It names the scan only by its study key (a keyed hash), never by a file name or any DICOM attribute,
so a report can be shared without carrying a patient identifier. Drawn on a matplotlib ``Figure``
object rather than through pyplot, whose global state is not safe across Streamlit's threads.
"""

from __future__ import annotations

import io
import textwrap
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from matplotlib.figure import Figure

from medattn import RESEARCH_NOTICE
from medattn.explain.overlay import lay_on
from medattn.review.text import probability

FORMATS = {"png": "image/png", "pdf": "application/pdf"}
WITHHELD = (
    "Image withheld: the file says text is burned\ninto its pixels (Burned In Annotation YES),\n"
    "which may identify the patient."
)
OUTPUT_WITHHELD = (
    "The findings, probabilities and heatmap are withheld:\nthe model was not built for images like this one,\n"
    "so its answer would only mislead."
)


@dataclass(frozen=True)
class ReportContent:
    image: np.ndarray  # uint8 H x W or H x W x 3, as displayed
    # The viewer's overlay layer (RGBA uint8 H x W x 4), laid on the image only when a report is drawn; None where
    # the screen withholds the model's output.
    layer: np.ndarray | None
    probabilities: dict[str, float]  # display name -> probability; empty where the screen withholds them
    thresholds: dict[str, float]  # display name -> decision threshold (empty for multi-class models)
    model: str  # name and version
    explanation: str  # e.g. "Attention overlay — Pulmonary nodule"
    scan_key: str
    created: datetime
    # The scan declares text burned into its pixels: the report shows neither picture, so it can be shared.
    pixels_withheld: bool = False
    # Set when the scan is unlike the model's training data: the report then says, above the findings,
    # that they are not meaningful.
    unlike_training_data: str | None = None


# Characters a line of 11 pt text holds between the A4 page's margins (6% of its width each side).
BOLD_LINE, PLAIN_LINE = 80, 90


def render_report(content: ReportContent, file_format: str) -> bytes:
    if file_format not in FORMATS:
        raise ValueError(f"unknown report format {file_format!r}; choose from {sorted(FORMATS)}")
    figure = Figure(figsize=(8.27, 11.69), dpi=110)  # A4 portrait
    figure.suptitle("medattn — scan review", fontsize=16, x=0.06, ha="left", y=0.975)
    figure.text(0.06, 0.945, RESEARCH_NOTICE, fontsize=10, color="#9a3412", wrap=True)
    figure.text(
        0.06,
        0.925,
        f"Model: {content.model}    Scan key: {content.scan_key[:16]}    "
        f"Generated {content.created:%Y-%m-%d %H:%M} UTC",
        fontsize=8.5,
        color="#444444",
    )
    for position, picture, title in (
        ((0.05, 0.5, 0.43, 0.4), content.image, "Image"),
        (
            (0.52, 0.5, 0.43, 0.4),
            None if content.layer is None else lay_on(content.image, content.layer),
            content.explanation,
        ),
    ):
        axes = figure.add_axes(position)
        if content.pixels_withheld or picture is None:
            reason = WITHHELD if content.pixels_withheld else OUTPUT_WITHHELD
            axes.text(0.5, 0.5, reason, ha="center", va="center", fontsize=9, wrap=True, color="#9a3412")
        else:
            axes.imshow(picture, cmap="gray" if picture.ndim == 2 else None, vmin=0, vmax=255)
        axes.set_title(title, fontsize=10, wrap=True)
        axes.set_axis_off()
    if content.unlike_training_data:
        # Wrapped here, not by matplotlib, whose wrap runs to the page's edge: the same margin on both sides.
        warning = textwrap.fill(content.unlike_training_data, BOLD_LINE)
        figure.text(0.06, 0.455, warning, fontsize=11, color="#b91c1c", weight="bold")
    if content.probabilities:
        _probability_chart(figure.add_axes((0.3, 0.12, 0.62, 0.3)), content)
    else:  # as on screen: no number is shown beside the warning that says it means nothing
        figure.text(0.06, 0.38, textwrap.fill(OUTPUT_WITHHELD.replace("\n", " "), PLAIN_LINE), fontsize=11)
    buffer = io.BytesIO()
    figure.savefig(buffer, format=file_format)
    return buffer.getvalue()


def _probability_chart(axes, content: ReportContent) -> None:
    names = list(content.probabilities)[::-1]  # highest first, from the top
    values = [content.probabilities[name] for name in names]
    axes.barh(names, values, color="#9ca3af" if content.unlike_training_data else "#2563eb", height=0.5)
    for row, name in enumerate(names):
        inside = values[row] > 0.85  # a long bar carries its label inside, in white
        x = values[row] - 0.02 if inside else values[row] + 0.02
        axes.text(x, row, probability(values[row]), va="center", ha="right" if inside else "left", fontsize=9,
                  color="white" if inside else "black")  # fmt: skip
        if name in content.thresholds:
            axes.plot([content.thresholds[name]] * 2, [row - 0.35, row + 0.35], color="#111111", linewidth=2)
    axes.set_xlim(0, 1)
    axes.set_xlabel("Calibrated probability (black mark: decision threshold)", fontsize=9)
    meaningless = " (not meaningful for this scan)" if content.unlike_training_data else ""
    axes.set_title(f"Findings{meaningless}", fontsize=11, loc="left")
    axes.tick_params(labelsize=9)
