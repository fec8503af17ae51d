"""medattn: the review app. This file only names the pages; each lives in pages/ and calls medattn."""

import streamlit as st

st.set_page_config(page_title="medattn", page_icon="🩻", layout="wide")
st.navigation(
    [
        st.Page("pages/review.py", title="Review", icon=":material/radiology:", default=True),
        st.Page("pages/worklist.py", title="Worklist", icon=":material/checklist:"),
        st.Page("pages/model.py", title="Model", icon=":material/monitoring:"),
        st.Page("pages/history.py", title="History", icon=":material/history:"),
        st.Page("pages/study.py", title="Reader study", icon=":material/groups:"),
    ]
).run()
