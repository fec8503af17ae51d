"""medattn: the review app. This file only names the pages; each lives in pages/views/ and calls medattn.

The page scripts sit one folder below pages/ on purpose. Streamlit treats a pages/ folder beside the main
script as its older multipage convention until st.navigation has run once in the process, and would run a
pages/*.py file on its own, without this file, for a first request to its address (a tab reconnecting
after a restart). With no script directly in pages/, every request runs this file and its navigation.
"""

import streamlit as st

PAGES = (  # (script, title, icon)
    ("pages/views/review.py", "Review", ":material/radiology:"),
    ("pages/views/worklist.py", "Worklist", ":material/checklist:"),
    ("pages/views/model.py", "Model", ":material/monitoring:"),
    ("pages/views/history.py", "History", ":material/history:"),
    ("pages/views/study.py", "Reader study", ":material/groups:"),
)

# Streamlit runs this file as __main__. The decoder workers the server spawns (medattn.scan.elsewhere) import
# it again as __mp_main__, as multiprocessing's spawn does with a parent's main script: there it lays out
# nothing (it logged 8 "missing ScriptRunContext" warnings per worker).
if __name__ == "__main__":
    from pages.views import shared  # here, not above: the decoder workers need none of it

    st.set_page_config(page_title="medattn", page_icon="🩻", layout="wide")
    if shared.signed_in():
        pages = [
            st.Page(script, title=title, icon=icon, default=not n) for n, (script, title, icon) in enumerate(PAGES)
        ]
        st.navigation(pages).run()
    else:  # a shared app's visitor: every page's address shows the sign-in page, and nothing else exists
        addresses = [script.rsplit("/", 1)[1].removesuffix(".py") for script, _, _ in PAGES]
        pages = [st.Page(shared.locked, title=title, url_path=address, default=not n)
                 for n, ((_, title, _), address) in enumerate(zip(PAGES, addresses, strict=True))]  # fmt: skip
        st.navigation(pages, position="hidden").run()
