"""medattn: the review app. This file only names the pages; each lives in pages/views/ and calls medattn.

The page scripts sit one folder below pages/ on purpose. Streamlit treats a pages/ folder beside the main
script as its older multipage convention until st.navigation has run once in the process, and would run a
pages/*.py file on its own, without this file, for a first request to its address (a tab reconnecting
after a restart). With no script directly in pages/, every request runs this file and its navigation.
"""

import streamlit as st

# Streamlit runs this file as __main__. The decoder workers the server spawns (medattn.scan.elsewhere) import
# it again as __mp_main__, as multiprocessing's spawn does with a parent's main script: there it lays out
# nothing (it logged 8 "missing ScriptRunContext" warnings per worker).
if __name__ == "__main__":
    st.set_page_config(page_title="medattn", page_icon="🩻", layout="wide")
    st.navigation(
        [
            st.Page("pages/views/review.py", title="Review", icon=":material/radiology:", default=True),
            st.Page("pages/views/worklist.py", title="Worklist", icon=":material/checklist:"),
            st.Page("pages/views/model.py", title="Model", icon=":material/monitoring:"),
            st.Page("pages/views/history.py", title="History", icon=":material/history:"),
            st.Page("pages/views/study.py", title="Reader study", icon=":material/groups:"),
        ]
    ).run()
