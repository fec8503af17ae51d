"""The reading viewer: Cornerstone3D (OHIF's rendering and tools library) as a Streamlit component.

Its source is ``frontend/`` (``npm ci && npm run build``); the built bundle in ``build/`` is committed, so the app
needs no Node, and ``.ci/run`` rebuilds it and fails if it differs. The page hands over what medattn decided
(``medattn.screens.viewer``): the scan's stored values, losslessly, and the overlay layer the report is made
from. Windowing, zoom, pan, measuring and the overlay switch happen in the browser and never rerun the page.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from medattn.screens.viewer import ViewerImage

_component = components.declare_component("medattn_viewer", path=str(Path(__file__).parent / "build"))


def viewer(image: ViewerImage | None, key: str, fill: str = "below") -> None:
    """Show ``image`` in the reading viewer, or an empty viewer that loads while a scan is chosen; ``key`` keeps
    one viewer per place on the page. ``fill``: "below", as tall as the window leaves below the viewer's place,
    or "screen", a screen's height wherever it sits (the same size for every reading of a study). A scan's values
    are sent once: the viewer says which it holds (its value, kept under ``key``)."""
    arguments = image.arguments(st.session_state.get(key)) if image else {"scan": None}
    _component(**arguments, fill=fill, key=key, default=None)
