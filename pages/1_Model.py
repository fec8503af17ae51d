"""Model: the default model's card — what it was trained on and how well it does."""

import streamlit as st

from medattn import RESEARCH_NOTICE
from medattn.checkpoint import read_card
from medattn.paths import DEFAULT_MODEL_DIR

CONFUSION = ("true_positive", "false_positive", "false_negative", "true_negative")

st.set_page_config(page_title="medattn · Model", page_icon="🩻", layout="wide")
st.title("Model card")
st.warning(RESEARCH_NOTICE, icon="⚠️")

card = read_card(DEFAULT_MODEL_DIR)
metrics = card.get("metrics", {})
training = card.get("training", {})

st.subheader(f"{card['name']} · version {card['version']}")
st.write(
    f"{card['task'].capitalize()} classifier of {len(card['classes'])} findings, "
    f"{card['parameters']:,} parameters, trained in {training.get('seconds', 0) / 60:.1f} min "
    f"on {training.get('train_size', '?'):,} cases ({training.get('data', 'unknown data')})."
)

st.info(card.get("intended_use", "No intended use is recorded for this model."))

if metrics:
    localisation = metrics.get("localisation", {})
    left, middle, right = st.columns(3)
    left.metric("Macro AUC", f"{metrics['macro_auc']:.3f}")
    middle.metric("ECE after calibration", f"{metrics['ece_after_calibration']:.3f}")
    if "attention" in localisation:
        right.metric("Attention pointing game", f"{localisation['attention']['pointing_game_overall']:.2f}")
    names = card.get("display_names", {})
    per_class = metrics["per_class"]
    table = {
        "Finding": [names.get(c, c) for c in per_class],
        "AUC": [v["auc"] for v in per_class.values()],
        "F1": [v["f1"] for v in per_class.values()],
        "Accuracy": [v["accuracy"] for v in per_class.values()],
    }
    for method, results in localisation.items():
        table[f"{method}: pointing game"] = [results["per_class"][c]["pointing_game"] for c in per_class]
        table[f"{method}: mass in mask"] = [results["per_class"][c]["mass_in_mask"] for c in per_class]
    st.dataframe(table, hide_index=True)
    st.caption(f"Measured on {metrics['cases']:,} cases of {metrics['data']}, never used in training.")
    with st.expander("Confusion counts at the decision thresholds"):
        st.dataframe(
            {"Finding": [names.get(c, c) for c in per_class]}
            | {key.replace("_", " "): [v["confusion"][key] for v in per_class.values()] for key in CONFUSION},
            hide_index=True,
        )

if training.get("history"):
    st.markdown("#### Training")
    st.line_chart({"validation macro AUC": [h["val_macro_auc"] for h in training["history"]]})

with st.expander("Preprocessing"):
    st.json(card.get("preprocessing", {}))
