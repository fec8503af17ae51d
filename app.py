"""Review: upload a scan, see where the attention model looked and what it found."""

from __future__ import annotations

import hashlib

import streamlit as st

from medattn import RESEARCH_NOTICE
from medattn.explain import EXPLAINERS, Heatmap
from medattn.inference import Prediction, Predictor
from medattn.io import Scan, ScanError, load_scan
from medattn.overlay import COLORMAPS, blend, colour_bar
from medattn.samples import list_samples
from medattn.text import escape_markdown

st.set_page_config(page_title="medattn · Review", page_icon="🩻", layout="wide")


@st.cache_resource
def default_predictor() -> Predictor:
    return Predictor.default()


@st.cache_data(max_entries=16, show_spinner=False)
def analyse(content: bytes) -> tuple[Scan, Prediction]:
    """Keyed by the file's own bytes, so a cached result can only be served for the same file."""
    scan = load_scan(content)
    return scan, default_predictor().predict(scan)


@st.cache_data(max_entries=64, show_spinner=False)
def explain(content: bytes, class_name: str, method: str) -> Heatmap:
    """Grad-CAM and occlusion on demand; attention came with the prediction. Keyed by the file's bytes."""
    scan, prediction = analyse(content)
    if method == "attention":
        return prediction.attention[class_name]
    return default_predictor().explain(scan, class_name, method)


st.title("Attention review")
st.warning(RESEARCH_NOTICE, icon="⚠️")

predictor = default_predictor()
with st.sidebar:
    upload = st.file_uploader("Upload a scan (DICOM, PNG, JPEG, TIFF, BMP)", key="upload")
    samples = list_samples()
    sample = st.selectbox("…or open a sample case", ["—", *samples], key="sample")
    st.divider()
    method = st.selectbox(
        "Explanation", list(EXPLAINERS), format_func=lambda name: EXPLAINERS[name].title, key="method"
    )
    opacity = st.slider("Overlay opacity", 0.0, 1.0, 0.45, 0.05, key="opacity")
    colormap = st.selectbox("Colour map", list(COLORMAPS), key="colormap")
    threshold = st.slider("Hide heat below", 0.0, 0.9, 0.0, 0.05, key="threshold", help="Share of the map's peak")
    outline = st.slider("Outline the hottest % of the image", 0, 30, 0, 1, key="outline", help="0 draws no outline")
    st.caption(f"Model: {predictor.name}")
    st.caption(predictor.card.get("intended_use", ""))

if upload is not None:
    content = upload.getvalue()
elif sample != "—":
    content = samples[sample].read_bytes()
else:
    st.info("Upload a scan or open a sample case to begin.")
    st.stop()

try:
    with st.spinner("Reading the scan and running the model…"):
        scan, prediction = analyse(content)
except ScanError as error:
    st.error(f"This file cannot be shown. {escape_markdown(str(error))}")
    st.stop()

classes = list(prediction.probabilities)
ranked = sorted(classes, key=prediction.probabilities.get, reverse=True)
shown = st.selectbox(
    "Heatmap for finding",
    ranked,
    format_func=predictor.display_name,
    key=f"shown-{hashlib.sha256(content).hexdigest()[:12]}",
)

if prediction.labels:
    found = ", ".join(f"{predictor.display_name(c)} ({prediction.probabilities[c]:.0%})" for c in prediction.labels)
    st.subheader(f"Findings above threshold: {found}")
else:
    top = prediction.top_class
    st.subheader(
        f"No finding above threshold (highest: {predictor.display_name(top)}, {prediction.probabilities[top]:.0%})"
    )

image = scan.display(0)
with st.spinner(f"Computing {EXPLAINERS[method].title}…"):
    heatmap = explain(content, shown, method)
original, overlaid = st.columns(2)
original.image(image, caption="Original", width="stretch")
overlaid.image(
    blend(image, heatmap.values, opacity, colormap, threshold, outline / 100),
    caption=f"{EXPLAINERS[method].title} overlay — {predictor.display_name(shown)} ({heatmap.seconds:.2f} s)",
    width="stretch",
)
overlaid.image(colour_bar(colormap), caption="Weight relative to the map's peak", width="stretch")

st.markdown("#### Probabilities")
st.dataframe(
    {
        "Finding": [predictor.display_name(c) for c in ranked],
        "Probability": [prediction.probabilities[c] for c in ranked],
        "Threshold": [prediction.thresholds.get(c) for c in ranked],
        "Call": ["positive" if c in prediction.labels else "negative" for c in ranked],
    },
    column_config={
        "Probability": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0),
        "Threshold": st.column_config.NumberColumn(format="percent"),
    },
    hide_index=True,
)

with st.expander("Scan details (de-identified)"):
    # A dataframe renders every cell as plain text: file-derived strings never become markup.
    st.dataframe({"Attribute": list(scan.meta), "Value": list(scan.meta.values())}, hide_index=True)
