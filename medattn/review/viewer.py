"""An interactive view of a scan and its map: zoom and pan at full resolution, in the browser.

Plotly draws it, so zooming, panning, the overlay's opacity and the overlay's on/off switch all happen in
the browser, without a rerun of the page. The scan travels once, as a lossless PNG; the map travels as a
small transparent layer at its own resolution, stretched over the scan by the browser.
"""

from __future__ import annotations

import base64

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from medattn.explain.overlay import coloured, png_bytes
from medattn.review.marks import POINT_RADIUS, Mark

OPACITY_STEPS = 21  # 0, 0.05, ... 1
CLICK_GRID = 64  # clickable places per side of the marking view: a click picks the nearest
MARK_COLOURS = ("#22d3ee", "#facc15", "#f472b6", "#a3e635")


def heat_layer(levels: np.ndarray, colormap: str, threshold: float) -> np.ndarray:
    """RGBA uint8 for colour levels in [0, 1]: coloured where the overlay colours (level above 0 and at
    least ``threshold``), transparent elsewhere."""
    shown = (levels > 0) & (levels >= threshold)
    return np.dstack([coloured(levels, colormap), np.where(shown, 255, 0).astype(np.uint8)])


def zoomable(
    scan: np.ndarray,
    levels: np.ndarray,
    colormap: str,
    threshold: float,
    opacity: float,
    side_by_side: bool,
    overlay_shown: bool = True,
) -> go.Figure:
    """The scan (uint8, H x W or H x W x 3, at the resolution to zoom into) with the map's ``levels`` laid
    over it: on its own, or beside the bare scan with both views zoomed and panned together. The map layer
    starts hidden when ``overlay_shown`` is false; the figure's own buttons switch it in the browser."""
    height, width = scan.shape[:2]
    columns = 2 if side_by_side else 1
    figure = make_subplots(rows=1, cols=columns, horizontal_spacing=0.01)
    original = go.Image(source=_data_uri(png_bytes(scan)), hoverinfo="skip", name="scan")
    for column in range(1, columns + 1):
        figure.add_trace(original, row=1, col=column)
    layer = heat_layer(levels, colormap, threshold)
    figure.add_trace(
        go.Image(
            source=_data_uri(png_bytes(layer)),
            dx=width / layer.shape[1],
            dy=height / layer.shape[0],
            opacity=opacity,
            visible=overlay_shown,
            hoverinfo="skip",
            name="map",
        ),
        row=1,
        col=columns,
    )
    map_trace = len(figure.data) - 1
    figure.update_xaxes(visible=False, matches="x")
    figure.update_yaxes(visible=False, matches="y", scaleanchor="x")
    steps = np.linspace(0.0, 1.0, OPACITY_STEPS)
    figure.update_layout(
        height=560,
        margin={"l": 0, "r": 0, "t": 40, "b": 60},
        dragmode="pan",
        uirevision="scan",  # zoom and pan survive a new map over the same scan
        updatemenus=[
            {
                "type": "buttons",
                "direction": "right",
                "x": 0,
                "y": 1.08,
                "xanchor": "left",
                "buttons": [
                    {"label": "Overlay on", "method": "restyle", "args": [{"visible": True}, [map_trace]]},
                    {"label": "Overlay off", "method": "restyle", "args": [{"visible": False}, [map_trace]]},
                ],
            }
        ],
        sliders=[
            {
                "active": int(np.abs(steps - opacity).argmin()),
                "currentvalue": {"prefix": "Overlay opacity: "},
                "pad": {"t": 10},
                "steps": [
                    {"label": f"{value:.2f}", "method": "restyle", "args": [{"opacity": value}, [map_trace]]}
                    for value in steps
                ],
            }
        ],
    )
    return figure


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
