"""The marking view: a scan in Plotly, where a reader marks where a finding lies (boxes, outlines, points)."""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go

from medattn.explain.overlay import png_bytes
from medattn.review.marks import POINT_RADIUS, Mark

CLICK_GRID = 64  # clickable places per side of the marking view: a click picks the nearest
MARK_COLOURS = ("#22d3ee", "#facc15", "#f472b6", "#a3e635")


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def marking_figure(image: np.ndarray, scan_height: int, scan_width: int, marks: list[Mark], names: dict) -> go.Figure:
    """The scan as shown (uint8, any size) on axes in the scan's own pixels, for drawing marks with Plotly's
    box and lasso selections or a click; ``marks`` are drawn over it, labelled with ``names[finding]``."""
    figure = go.Figure(
        go.Image(
            source=_data_uri(png_bytes(image)),
            dx=scan_width / image.shape[1],
            dy=scan_height / image.shape[0],
            hoverinfo="skip",
        )
    )
    # Selections need points to select: an invisible grid, so that a click marks a point and a box or
    # lasso is reported with its outline.
    steps = (np.arange(CLICK_GRID) + 0.5) / CLICK_GRID
    xs, ys = np.meshgrid(steps * scan_width, steps * scan_height)
    figure.add_trace(
        go.Scatter(
            x=xs.ravel(), y=ys.ravel(), mode="markers", hoverinfo="none", showlegend=False,
            marker={"size": 8, "color": "rgba(0,0,0,0)"}, selected={"marker": {"color": "rgba(0,0,0,0)"}},
            unselected={"marker": {"opacity": 0}},
        )
    )  # fmt: skip
    radius = POINT_RADIUS * min(scan_height, scan_width)
    for index, mark in enumerate(marks):
        colour = MARK_COLOURS[index % len(MARK_COLOURS)]
        line = {"color": colour, "width": 3}
        (x0, y0), *rest = mark.points
        if mark.kind == "point":
            figure.add_shape(type="circle", x0=x0 - radius, y0=y0 - radius, x1=x0 + radius, y1=y0 + radius, line=line)
        elif mark.kind == "box":
            figure.add_shape(type="rect", x0=x0, y0=y0, x1=rest[0][0], y1=rest[0][1], line=line)
        else:
            path = "M " + " L ".join(f"{x},{y}" for x, y in mark.points) + " Z"
            figure.add_shape(type="path", path=path, line=line)
        figure.add_annotation(
            x=x0, y=y0, text=names.get(mark.finding, mark.finding), showarrow=False, font={"color": colour, "size": 14},
            yshift=14, bgcolor="rgba(0,0,0,0.6)",
        )  # fmt: skip
    # The plot area shrinks to the scan ("domain"), so that the whole area a reader can draw on is the scan.
    figure.update_xaxes(visible=False, range=[0, scan_width], constrain="domain")
    figure.update_yaxes(visible=False, range=[scan_height, 0], scaleanchor="x", constrain="domain")
    figure.update_layout(
        height=560, margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode="select", clickmode="event+select",
        uirevision="marks",
    )  # fmt: skip
    return figure
