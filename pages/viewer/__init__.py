"""The reading viewer: Cornerstone3D (OHIF's rendering and tools library) as a Streamlit component.

Its source is ``frontend/`` (``npm ci && npm run build``); the built bundle in ``build/`` is committed, so the app
needs no Node, and ``.ci/run`` rebuilds it and fails if it differs. The page hands over what medattn decided
(``medattn.screens.viewer``): the scan's stored values, losslessly, and the overlay layer the report is made
from. Windowing, zoom, pan, measuring and the overlay switch happen in the browser and never rerun the page; an
opacity is drawn in the browser, then told to the page for its reports.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
import streamlit.components.v1 as components

from medattn.screens.viewer import ViewerImage, said_opacity

_component = components.declare_component("medattn_viewer", path=str(Path(__file__).parent / "build"))


# What each viewer the run before drew was sent (viewer key -> scan id), and what this run's were: Streamlit
# removes from the page what a run does not draw, so a viewer missing from the run before holds nothing.
_SENT_BEFORE, _SENT = "viewers-sent-before", "viewers-sent"


def new_run() -> None:
    """Called as every page's run begins (``shared.page``)."""
    st.session_state[_SENT_BEFORE] = st.session_state.pop(_SENT, {})


def opacity(key: str, first: float) -> float:
    """The overlay's opacity the reader last chose in the viewer ``key`` (it draws the change at once, then tells
    the page, whose reports and exports use it), kept for the session; ``first`` until they choose one."""
    said = said_opacity(st.session_state.get(key))
    if said is not None:
        st.session_state[f"{key}-opacity"] = said
    return st.session_state.get(f"{key}-opacity", first)


def viewer(image: ViewerImage | None, key: str, fill: str = "below") -> None:
    """Show ``image`` in the reading viewer, or an empty viewer that loads while a scan is chosen; ``key`` keeps
    one viewer per place on the page. ``fill``: "below", as tall as the window leaves below the viewer's place,
    or "screen", a screen's height wherever it sits (the same size for every reading of a study).

    A scan's values are sent once, not on every rerun: a viewer drawn in the run before holds what it was sent
    then. One that lacks them all the same (made anew by the browser) says so (its value, kept under ``key``),
    and the page, running again on hearing it, sends them.

    The viewer's other messages: a mark drawn (``shared.marking``), an opacity chosen (``opacity``)."""
    held = st.session_state.get(_SENT_BEFORE, {}).get(key)
    said = st.session_state.get(key)  # the viewer's last message: a mark drawn, or a scan it lacks
    if isinstance(said, dict) and said.get("lacks") and said.get("id") != st.session_state.get(f"{key}-heard"):
        st.session_state[f"{key}-heard"] = said.get("id")
        held = None
    arguments = image.arguments(held) if image else {"scan": None}
    st.session_state.setdefault(_SENT, {})[key] = image.scan_id if image else None
    _component(**arguments, fill=fill, key=key, default=None)
