"""The Review page's "Your review" section: the reader's name, marks, verdicts and reading, saved to the review
store, with a contradiction pointed out before it is saved. Not a page: Streamlit runs only the scripts
``app.py`` names."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import streamlit as st

from medattn.errors import ReviewError, StoreError
from medattn.explain import EXPLAINERS
from medattn.model.predictor import Prediction, Predictor
from medattn.review.marks import agreements_with
from medattn.review.store import VERDICTS, Review
from medattn.review.workspace import Case
from medattn.screens import review_page
from pages.views import shared


def reader(case: Case) -> tuple[str, list[Review]]:
    """Who reviews (the signed-in identity, or the name typed on this computer) and their saved reviews of the scan,
    newest first (the DICOM results carry the latest, the viewer the latest marks). Read before the page is laid
    out."""
    who = shared.user()
    if who.verified:  # a shared app records the signed-in identity, never a typed name
        reviewer = who.label
    else:
        if "reviewer" not in st.session_state:  # widget state is dropped on other pages; the name is kept apart
            st.session_state.reviewer = st.session_state.get("reviewer_name", "")
        reviewer = st.session_state.reviewer
    store = shared.review_store(say_why=False)  # said under "Your review"
    saved = []
    if store is not None and reviewer:
        try:
            saved = store.reviews(reviewer, shared.scan_key_of(case))
        except StoreError as error:  # the marks are not shown again, and the page goes on
            shared.show_error(error)
    return reviewer, saved


def your_review(
    case: Case,
    frame: int,
    prediction: Prediction,
    predictor: Predictor,
    model_dir: Path,
    withheld: bool,
    reviewer: str,
    marks: dict[str, dict],
) -> None:
    """Lay out the review form and save what is submitted, with the reader's ``marks`` (from ``mark_controls``);
    ``reviewer``: from ``reader``."""
    st.markdown("#### Your review")
    store = shared.review_store()
    who = shared.user()
    if who.verified:
        st.text_input("Reviewer", value=reviewer, disabled=True, help="Your signed-in identity: reviews are "
                      "recorded under it.")  # fmt: skip
    else:
        typed = st.text_input("Reviewer", key="reviewer", max_chars=200, placeholder="Your name")
        st.session_state.reviewer_name = typed
    key, tag = shared.scan_key_of(case), case.key[:12]
    ranked, name = review_page.ranked(prediction), predictor.display_name

    # Not a form: each answer reaches the server as it is given and is kept in the session (shared.kept), so a
    # draft outlives a visit to another page. A form sent nothing until saved, and lost the draft; a fragment
    # lost the first answer given while the page was still rerunning.
    with st.container(key=f"your-review-{tag}-{frame}"):
        if withheld:  # nothing of the model's was seen: there is nothing to agree with, only a reading to record
            st.caption("The model's calls are withheld for this scan, so only your own reading is recorded.")
            verdicts = {}  # stored and exported as "not given"
        else:
            verdicts = {
                c: st.radio(
                    f"{name(c)}: {review_page.model_call(prediction, c)}",
                    VERDICTS,
                    index=None,  # unanswered until the reader answers: no agreement is assumed
                    format_func=str.capitalize,
                    horizontal=True,
                    key=shared.kept(f"verdict-{c}-{tag}-{frame}"),
                )
                for c in ranked
            }
        corrected = st.multiselect(
            "Findings present, in your reading", ranked, format_func=name, key=shared.kept(f"corrected-{tag}-{frame}")
        )
        note = st.text_area(
            "Note", max_chars=5000, key=shared.kept(f"note-{tag}-{frame}"), help="Do not enter patient identifiers."
        )
        submitted = st.button("Save review", disabled=store is None, type="primary")

    if submitted and store is not None:
        review = Review.from_form(
            reviewer=reviewer,
            scan_key=key,
            model_name=predictor.card.name,
            model_version=predictor.card.version,
            probabilities=prediction.probabilities,
            model_labels=prediction.labels,
            unlikeness=prediction.unlikeness,
            unlikeness_limit=prediction.unlikeness_limit,
            noise=prediction.noise,
            noise_limit=prediction.noise_limit,
            verdicts=verdicts,
            corrected_labels=corrected,
            note=note,
            case_key=case.key,
            frame=frame,
            marks=marks,
            reviewer_issuer=who.issuer if who.verified else None,
            reviewer_subject=who.subject if who.verified else None,
        )
        try:
            review = replace(review.validated(), agreements=_measured(marks, case, frame, prediction, model_dir))
        except ReviewError as error:
            shared.show_error(error)
        else:
            if review.contradictions():  # pointed out first: saved only if the reader confirms
                st.session_state.contradicted_review = review
            else:
                _save(store, review)
    pending = st.session_state.get("contradicted_review")
    if pending is not None and pending.scan_key == key:
        names = ", ".join(name(f) for f in pending.contradictions())
        st.warning(
            f"Your reading contradicts your verdict on: {names}. Agreeing that a finding is present means "
            "listing it in your reading; disagreeing means the opposite. Correct the form and save again, "
            "or save it as it is."
        )
        if st.button("Save it as it is", key="save-contradicted"):
            _save(store, pending)
    outcome = st.session_state.pop("review_saved", None)
    if isinstance(outcome, Exception):
        shared.show_error(outcome)
    elif outcome:
        st.success(outcome)


def _measured(
    marks: dict[str, dict], case: Case, frame: int, prediction: Prediction, model_dir: Path
) -> dict[str, dict[str, dict[str, float]]]:
    """Every method's agreement with each mark; none for a scan unlike the training data (no map is
    meaningful there)."""
    if prediction.unlike_training_data:
        return {}
    with st.spinner("Measuring every explanation against your marks…"):
        return agreements_with(
            marks,
            lambda method, finding: shared.explanation(case.key, model_dir, frame, method, finding, case).values,
            case.scan.frame(frame).shape[:2],
            EXPLAINERS,
        )


def _save(store, review: Review) -> None:
    """Save ``review``, then run the page again: it read the reader's saved reviews (their marks, the DICOM
    results' reading) before this one was saved. The outcome is shown by that run."""
    st.session_state.pop("contradicted_review", None)
    try:
        st.session_state.review_saved = f"Review saved (number {store.save(review)}). It is listed on the History page."
    except (ReviewError, StoreError) as error:
        st.session_state.review_saved = error
    st.rerun()
