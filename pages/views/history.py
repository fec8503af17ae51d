"""History: the saved reviews, filterable, and exported as CSV."""

from __future__ import annotations

from pages.views import shared  # first: it imports the heavy libraries once, for every session

# isort: split
from functools import partial

import streamlit as st

from medattn.access import visible_to
from medattn.review.store import select_reviews
from medattn.review.text import escape_markdown, probability

# The gate withheld the model's output for a review's scan (unlike the training data, or too noisy: its output
# meant nothing), or did not, or the review was saved before that was recorded.
LISTED = 100  # reviews listed on the page, newest first; the export holds every one selected
UNLIKE = {True: "yes — output not meaningful", False: "no", None: "not recorded"}

with shared.page("Review history"):
    store = shared.review_store()
    if store is None:
        st.stop()
    name = shared.predictor(shared.chosen_model_dir()).display_name  # "Pulmonary nodule", not "nodule"

    who = shared.user()
    saved = visible_to(who, store.reviews())
    if not saved:
        st.info("No review has been saved yet. Reviews are saved from the Review page.")
        st.stop()

    left, middle, right = st.columns(3)
    reviewers = left.multiselect("Reviewer", sorted({r.reviewer for r in saved}), key="history-reviewer")
    findings = middle.multiselect(
        "Finding present (in the reviewer's reading)",
        sorted({f for r in saved for f in r.probabilities}),
        format_func=name,
        key="history-finding",
    )
    disagreements = right.checkbox("Only disagreements with the model", key="history-disagree")

    selected = select_reviews(saved, reviewers, findings, disagreements)
    listed = selected[:LISTED]
    more = f"; the newest {LISTED} are listed, and the CSV export holds them all" if len(selected) > LISTED else ""
    st.caption(f"{len(selected)} of {len(saved)} reviews{more}")
    # The store keeps no pixels and no file names: a review's scan can be named, shown and reopened only while it
    # is open in this session.
    open_scans = {shared.scan_key_of(case): case for case in shared.workspace().readable}
    reopenable = list({r.scan_key: open_scans[r.scan_key] for r in listed if r.scan_key in open_scans}.values())
    if reopenable:
        st.markdown("**Reviewed scans open in this session**")
        for case in reopenable:
            thumbnail, file_name, action = st.columns([1, 5, 2], vertical_alignment="center")
            thumbnail.image(case.thumbnail)
            file_name.text(case.name)  # the user's file name: plain text, never Markdown
            if action.button("Open in Review", key=f"reopen-{case.key[:12]}", width="stretch"):
                shared.workspace().select(case.key)
                st.switch_page("pages/views/review.py")
    # A table, which wraps its cells, not a data grid: the grid hid its last columns beyond the page's edge.
    st.table(
        {
            "Saved (UTC)": [r.created_at.strftime("%Y-%m-%d %H:%M") for r in listed],
            # In a shared app a typed name (a review saved before sign-in) says so; a personal app's are all typed.
            # Names and notes are the users' own text: a table renders Markdown, so they are made literal.
            "Reviewer": [
                escape_markdown(r.reviewer) + (" (name typed, not verified)" if who.verified and not r.verified else "")
                for r in listed
            ],
            # The file's name while it is open in this session; else the scan's key (no file name is stored).
            "Scan": [
                escape_markdown(open_scans[r.scan_key].name) if r.scan_key in open_scans else r.scan_key[:12]
                for r in listed
            ],
            "Model": [f"{r.model_name} {r.model_version}" for r in listed],
            "Output withheld": [UNLIKE[r.unlike_training_data] for r in listed],
            "Model's findings": [
                ", ".join(
                    f"{name(f)} {probability(p)}" for f, p in sorted(r.probabilities.items(), key=lambda i: -i[1])
                )
                for r in listed
            ],
            "Disagreed on": [", ".join(name(f) for f, v in r.verdicts.items() if v == "disagree") for r in listed],
            "Present, per reviewer": [", ".join(map(name, r.corrected_labels)) for r in listed],
            "Marks, and the attention's agreement": [
                "; ".join(
                    f"{name(f)} ({mark['kind']}"
                    + (
                        f": peak {'inside' if a['pointing'] else 'outside'}, {a['mass']:.0%} of heat inside)"
                        if (a := (r.agreements or {}).get(f, {}).get("attention"))
                        else ")"
                    )
                    for f, mark in (r.marks or {}).items()
                )
                for r in listed
            ],
            "Note": [escape_markdown(r.note) for r in listed],
        },
        hide_index=True,
    )
    st.download_button(
        "Export these reviews as CSV",
        data=partial(
            store.export_csv,
            who.named(st.session_state.get("reviewer_name", "")),
            selected,
        ),  # audited on click
        file_name="medattn-reviews.csv",
        mime="text/csv",
        on_click="ignore",
        key="export",
    )
