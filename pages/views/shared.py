"""Streamlit glue the pages share: caches, this session's workspace and review store. Not a page itself.

It lives beside the pages because it is Streamlit code (``medattn`` never imports streamlit) and only the
pages use it. ``app.py`` names the pages through ``st.navigation``.

What is cached across sessions is keyed by the file's own bytes (its sha256) and the model, so a
session can only ever be served results for a file it holds. Everything else (the workspace, the
review store and its connection) lives in the session's own state.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

# Each session runs on its own thread. Libraries that import lazily, imported by several sessions at once on
# a cold server, can hand one of them a partially initialised module (seen: pandas inside altair). They are
# imported here, under this module's import lock, and every page imports this module before anything else.
import altair  # noqa: F401
import numpy as np
import pandas  # noqa: F401
import pyarrow  # noqa: F401
import pydicom
import streamlit as st
from streamlit.runtime import Runtime

from medattn import RESEARCH_NOTICE, Heatmap, Prediction, Predictor, runtime
from medattn.access import LOCAL_USER, PACS, Identity, Refusal, admit, deployment, identity, session_hours
from medattn.assets import DEFAULT_MODEL_DIR, MODELS_DIR, models_in, synthetic_samples
from medattn.benchmark import SyntheticCase, sample_cases
from medattn.errors import MedattnError, PacsError, ReviewError, StoreError
from medattn.explain import EXPLAINERS, map_of
from medattn.explain.faithfulness import Faithfulness, check_faithfulness
from medattn.explain.overlay import colour_bar as legend
from medattn.explain.overlay import png_bytes
from medattn.explain.stability import Stability, check_stability
from medattn.installation import installation_secret, scan_key
from medattn.model.card import ModelCard
from medattn.pacs.dicomweb import Pacs
from medattn.pacs.outputs import source_dataset
from medattn.review.marks import Mark, drawn_mark
from medattn.review.store import ReviewStore
from medattn.review.text import escape_markdown
from medattn.review.workspace import ByteBudget, Case, Workspace
from medattn.scan.cine import cine_loop
from medattn.scan.elsewhere import DecoderPool
from medattn.scan.resizing import shrink
from medattn.screens.viewer import Marking, ViewerImage
from medattn.study import blinding
from medattn.study.records import Study, StudyStore
from pages import viewer as viewers

# Heatmaps are cached and sent at most this size (their sources are 32 or 128 px); images at most this.
HEATMAP_SIDE, DISPLAY_SIDE = 256, 1024
STORE_RETRY_S = 60
# Streamlit leaves 6rem above a page's first element; a compact page keeps only what clears its header.
COMPACT_PAGE = "[data-testid=stMainBlockContainer] { padding-top: 3.5rem; }"


@contextmanager
def page(title: str, compact: bool = False) -> Iterator[None]:
    """Every page's frame: its title and the research notice, and its error boundary. A ``compact`` page (one
    whose image should fill the screen) has a small title and less space above it.

    A ``MedattnError`` raised while the page runs (a broken model folder, an unusable review store) is
    shown as its message, never as a traceback.
    """
    _share_the_machine()
    _session_reaper()
    _set_kept_values_aside()
    viewers.new_run()
    if compact:
        st.html(f"<style>{COMPACT_PAGE}</style>")
        st.markdown(f"#### {title}")
    else:
        st.title(title)
    st.warning(RESEARCH_NOTICE, icon="⚠️")
    try:
        yield
    except MedattnError as error:
        show_error(error)


def show_error(error: Exception | str) -> None:
    """Every error a page shows (a ``MedattnError``, or a sentence of ours around one): its cause and fix,
    red, as literal text, so that nothing from a file becomes a link or formatting."""
    st.error(escape_markdown(error), icon=":material/block:")


MARKS_ABOUT = (
    "Where you see each finding, if you wish: choose the finding here, then Point, Box or Outline in the viewer's "
    "toolbar, and draw on the scan; a new mark for a finding replaces its old one. Marks are saved with your "
    "review, in the scan's own pixel coordinates, and shown again when you reopen the scan. Each explanation's "
    "agreement with them (its peak inside your mark, and the share of its heat inside) is stored too, and summed "
    "up on the Model page."
)


def marking(key: str, viewer_key: str, shown: ViewerImage, findings: list[str], name, initial) -> Marking:
    """The reader's marks on the frame ``shown`` in the viewer ``viewer_key``, kept in the session under ``key``:
    ``initial`` (the saved ones) until the reader changes them, with a mark just drawn on that frame taken in,
    once (the viewer's last message stays in the session). A new mark is for the finding chosen in
    ``mark_controls``, which lays the marks out; call this first."""
    if not st.session_state.get(f"marks-edited-{key}"):
        st.session_state[f"marks-{key}"] = dict(initial or {})
    marks = st.session_state[f"marks-{key}"]
    drawn = st.session_state.get(viewer_key)  # the viewer's last message: a mark a reader drew
    if isinstance(drawn, dict) and drawn.get("id") != st.session_state.get(f"mark-taken-{viewer_key}"):
        st.session_state[f"mark-taken-{viewer_key}"] = drawn.get("id")
        if drawn.get("scan") == shown.scan_id and drawn.get("frame") == shown.frame:
            try:
                mark = drawn_mark(drawn, findings, *shown.shape[1:3])
            except ReviewError as error:
                st.session_state["mark-refused"] = error
            else:
                marks[mark.finding] = mark.as_json()
                st.session_state[f"marks-edited-{key}"] = True
    target = st.session_state.get(f"mark-for-{key}")
    target = target if target in findings else findings[0]
    return Marking(target, name(target), tuple((name(f), Mark.from_json(f, m)) for f, m in marks.items()))


def mark_controls(key: str, findings: list[str], name) -> dict[str, dict]:
    """Beside the viewer, where marks are drawn: the finding the next mark is for, and a button to remove each mark
    (kept under ``key`` by ``marking``); returns the marks."""
    marks = st.session_state[f"marks-{key}"]

    def remove(finding: str) -> None:
        marks.pop(finding, None)
        st.session_state[f"marks-edited-{key}"] = True

    st.markdown("#### Your marks")
    st.selectbox("Mark where you see", findings, format_func=name, key=f"mark-for-{key}", help=MARKS_ABOUT)
    if marks:
        with st.container(horizontal=True):
            for finding in list(marks):
                st.button(f"✕ {name(finding)}", help="Remove this mark", on_click=remove, args=(finding,),
                          key=f"unmark-{key}-{finding}")  # fmt: skip
    else:
        st.caption("Optional: then Point, Box or Outline in the viewer's toolbar, and draw on the scan.")
    refused = st.session_state.pop("mark-refused", None)
    if refused:
        show_error(refused)
    return marks


@st.cache_resource(show_spinner=False)
def predictor(model_dir: str) -> Predictor:
    """One model per directory for every session: it is only read, so it is safe to share."""
    return Predictor.load(model_dir)


def available_models() -> dict[str, str]:
    """Model directory name -> path, for every folder under the models directory that holds a card."""
    return {name: str(path) for name, path in models_in(MODELS_DIR).items()}


def chosen_model_dir() -> str:
    models = available_models()
    chosen = st.session_state.get("model")
    return models.get(chosen) or str(DEFAULT_MODEL_DIR)


def chosen_card() -> ModelCard:
    """The chosen model's card as its predictor loaded it: read and checked against the weights once per
    process, not on every rerun."""
    return predictor(chosen_model_dir()).card


def unloadable(model_dir: str) -> bool:
    """Whether this model folder cannot be loaded (its card or weights are refused)."""
    try:
        predictor(model_dir)
    except MedattnError:
        return True
    return False


@st.cache_data(max_entries=256, show_spinner=False)
def prediction(case_key: str, model_dir: str, frame: int, _case: Case) -> Prediction:
    """Keyed by the file's hash, the model and the frame: moving a slider never reruns the model.

    The case (unhashed) is decoded only on a cache miss.
    """
    return predictor(model_dir).predict(_case.scan, frame, max_side=HEATMAP_SIDE)


@st.cache_data(max_entries=256, show_spinner=False)
def explanation(case_key: str, model_dir: str, frame: int, method: str, finding: str, _case: Case) -> Heatmap:
    predicted = prediction(case_key, model_dir, frame, _case)  # cached: made for the page already
    return map_of(predictor(model_dir), _case.scan, finding, method, predicted, frame, max_side=HEATMAP_SIDE)


@st.cache_data(max_entries=256, show_spinner=False)
def faithfulness(case_key: str, model_dir: str, frame: int, method: str, finding: str, _case: Case) -> Faithfulness:
    """The faithfulness check of the map on screen: about 20 forward passes, once per map."""
    heatmap, model = explanation(case_key, model_dir, frame, method, finding, _case), predictor(model_dir)
    hiding = model.card.faithfulness_hiding.get(finding, "grey")  # the hiding that separated best on validation
    return check_faithfulness(model, _case.scan, heatmap, frame, hiding=hiding)


@st.cache_data(max_entries=256, show_spinner=False)
def stability(case_key: str, model_dir: str, frame: int, method: str, finding: str, _case: Case) -> Stability:
    """The map-stability check of the map on screen: the method run on a batch of five, once per map."""
    return check_stability(predictor(model_dir), _case.scan, EXPLAINERS[method], finding, frame)


@st.cache_resource(show_spinner=False)
def _sample_keys() -> dict[str, str]:
    """sha256 of each shipped synthetic sample's bytes -> its file name: how an opened file is known as one."""
    return {hashlib.sha256(path.read_bytes()).hexdigest(): path.name for path in synthetic_samples().values()}


def sample_name(case: Case) -> str | None:
    """The shipped synthetic sample this case is, byte for byte, if it is one."""
    return _sample_keys().get(case.key)


@st.cache_resource(show_spinner="Drawing the samples' ground truth…")
def sample_truth() -> dict[str, SyntheticCase]:
    """The synthetic samples' true findings and masks, drawn again from their seed once per process."""
    return sample_cases()


@st.cache_data(max_entries=64, show_spinner=False)
def presets(case_key: str, frame: int, _case: Case) -> dict[str, tuple[float, float]]:
    return _case.scan.window_presets(frame)


@st.cache_data(max_entries=64, show_spinner=False)
def colour_bar(colormap: str, ticks: list[tuple[float, str]] | tuple, threshold: float) -> bytes:
    """The map's legend as PNG, made once per colour map, scale and threshold: drawn and encoded on every
    rerun, it was a tenth of the page's work when the opacity moved."""
    return png_bytes(legend(colormap, ticks, threshold))


@st.cache_data(max_entries=64, show_spinner=False)
def displayed(case_key: str, frame: int, window: tuple[float, float] | None, _case: Case) -> np.ndarray:
    """The frame as the reports show it (at most DISPLAY_SIDE px), made once per window."""
    return shrink(_case.scan.display(frame, window), DISPLAY_SIDE)


def viewer_image(case: Case, frame: int) -> ViewerImage:
    """The scan's stored values for the reading viewer (every frame where they fit, else ``frame``), made once and
    kept in the session for its last two: kept process-wide, a 2k radiograph's 7 MB outlived its session."""
    kept = st.session_state.setdefault("viewer-images", {})
    key = (case.key, None if ViewerImage.holds_every_frame(case.scan, frame) else frame)
    if key not in kept:
        while len(kept) >= 2:
            kept.pop(next(iter(kept)))
        kept[key] = ViewerImage.of(case.scan, frame, case.key[:12])
    return replace(kept[key], frame=frame)


@st.cache_data(max_entries=8, show_spinner=False)
def cine(case_key: str, window: tuple[float, float] | None, _case: Case) -> bytes:
    """Every frame as one looping animated WebP, built once per case and window."""
    return cine_loop(_case.scan, window)


@st.cache_resource(show_spinner=False)
def decoders() -> DecoderPool:
    """One pool of decoding processes for every session: the JPEG 2000 decoder holds the GIL, so
    sessions decoding in their own threads would take turns on one core."""
    return DecoderPool()


@st.cache_resource(show_spinner=False)
def _held_bytes() -> ByteBudget:
    """The bytes of files every session of this server holds open, against one bound."""
    return ByteBudget()


def workspace() -> Workspace:
    if "workspace" not in st.session_state:
        st.session_state.workspace = Workspace(loader=decoders().load_scan, server=_held_bytes())
    return st.session_state.workspace


# How often ended sessions are let go (see _session_reaper); MEDATTN_REAP_INTERVAL_S changes it.
REAP_INTERVAL_S = float(os.environ.get("MEDATTN_REAP_INTERVAL_S", "10"))
KEPT_VALUES, KEPT_KEYS = "kept-widget-values", "kept-widget-keys"
_NO_FIRST = object()


def kept(key: str, first=_NO_FIRST) -> str:
    """``key``, for a widget whose value outlives the pages and scans that do not draw it (the Review page's view
    settings; each scan's window, frame, reveals, finding shown and draft review); ``first``: its first value,
    given here rather than to the widget, for a widget with both makes Streamlit log a warning on each return.
    Call it in the run that draws the widget.

    Streamlit drops a widget's value at the end of a run that did not draw it. Each run copies the kept values
    aside (``page``), and the value is given back here, only in a run that draws the widget: a value given back
    is forced on the browser's widget, and one given back in a run without the widget showed the widget's
    default on return. Writing every value back on every run kept them too, but forced a stale value over a
    click made while a run was under way, and a quick run of verdicts lost one.
    """
    st.session_state.setdefault(KEPT_KEYS, set()).add(key)
    if key not in st.session_state:
        aside = st.session_state.get(KEPT_VALUES, {})
        if key in aside:
            st.session_state[key] = aside[key]
        elif first is not _NO_FIRST:
            st.session_state[key] = first
    return key


def _set_kept_values_aside() -> None:
    """The values of the widgets named by ``kept``, as this run began (the browser's latest)."""
    aside = st.session_state.setdefault(KEPT_VALUES, {})
    for key in st.session_state.get(KEPT_KEYS, ()):
        if key in st.session_state:
            aside[key] = st.session_state[key]


REAPER_UNAVAILABLE = "The session reaper cannot reach Streamlit's session storage"


def _ended_sessions() -> tuple | None:
    """Streamlit's store of sessions kept after their tab closed, and its lock: the one private Streamlit
    API this app uses (its storage is not configurable from ``streamlit run``). None, with a warning in the
    server's log, where another Streamlit's internals differ; the browser tests fail on that warning."""
    manager = getattr(Runtime.instance(), "_session_mgr", None)
    lock = getattr(manager, "_storage_lock", None)
    sessions = getattr(getattr(manager, "_session_storage", None), "_cache", None)
    if lock is None or not callable(getattr(sessions, "expire", None)):
        logging.getLogger(__name__).warning(
            "%s: ended sessions are let go only when another session closes (Streamlit %s).",
            REAPER_UNAVAILABLE,
            st.__version__,
        )
        return None
    return lock, sessions


@st.cache_resource(show_spinner=False)
def _share_the_machine() -> int:
    """Once per server: torch's threads beside the decoder pool (``medattn.runtime``); returns their count."""
    return runtime.share_cores_with_decoders()


@st.cache_resource(show_spinner=False)
def _session_reaper() -> threading.Thread | None:
    """One thread per server that lets ended sessions go and hands their memory back to the system.

    Streamlit keeps a closed session for server.disconnectedSessionTTL so that a reconnecting tab finds
    its work, in a TTL cache that removes an expired entry only on its next write: on an idle server, the
    last sessions' scans were never freed. Their state also sits partly in reference cycles (widget
    callbacks, closures) that only the cycle collector frees, and glibc keeps freed blocks in its arenas
    until they are handed back.
    """
    found = _ended_sessions()
    if found is None:
        return None
    lock, sessions = found

    def reap() -> None:
        while True:
            time.sleep(REAP_INTERVAL_S)
            with lock:
                ended = sessions.expire()
            if ended:
                del ended
                gc.collect()
                runtime.hand_back_freed_memory()

    thread = threading.Thread(target=reap, name="medattn-session-reaper", daemon=True)
    thread.start()
    return thread


def uploader(label: str, key: str) -> None:
    """A file uploader whose files open into the workspace, and whose removed files close their scans."""
    files = st.file_uploader(
        f"{label} (DICOM, PNG, JPEG, TIFF, BMP)",
        accept_multiple_files=True,
        key=key,
        on_change=_close_removed_uploads,
        args=(key,),
    )
    _add_uploads(files, key)


def _add_uploads(files: list, key: str) -> None:
    """Open each newly uploaded file into the workspace (in memory; nothing is written to disk)."""
    opened = st.session_state.setdefault("uploads", {}).setdefault(key, {})  # file id -> case key
    for file in files or []:
        if file.file_id not in opened:
            opened[file.file_id] = workspace().add(file.name, file.getvalue()).key
    st.session_state.setdefault("listed", {})[key] = {file.file_id for file in files or []}


def _close_removed_uploads(widget: str) -> None:
    """The uploader's change callback: close the scan of each file the user removed from it.

    Only files the uploader listed on the last run count: an uploader comes back empty when its page is
    shown again, and the files it held before are not closed by that.
    """
    still_uploaded = {file.file_id for file in st.session_state.get(widget) or []}
    opened = st.session_state.setdefault("uploads", {}).setdefault(widget, {})
    for file_id in st.session_state.get("listed", {}).get(widget, set()) - still_uploaded:
        key = opened.pop(file_id)
        if not any(key in other.values() for other in st.session_state.uploads.values()):
            workspace().remove(key)


def review_store(say_why: bool = True) -> ReviewStore | None:
    """This session's own store, opened on first use; None if it cannot be opened (and, ``say_why``, why).

    A failure is remembered for a minute: a server that never answers costs the connect timeout once,
    not on every rerun (every slider move would otherwise wait for it).
    """
    if "review_store" not in st.session_state:
        failed = st.session_state.get("review_store_failure")
        if failed is None or time.monotonic() - failed[1] > STORE_RETRY_S:
            try:
                st.session_state.review_store = ReviewStore.open()
                st.session_state.pop("review_store_failure", None)
            except StoreError as error:
                failed = st.session_state.review_store_failure = (str(error), time.monotonic())
        if "review_store" not in st.session_state:
            if say_why:
                show_error(f"Reviews cannot be saved or shown: {failed[0]}")
            return None
    return st.session_state.review_store


@st.cache_resource(max_entries=16, show_spinner=False)
def _study_cases(study_id: int, created_at: str, _study: Study, _records: StudyStore) -> np.ndarray:
    """A study's case fingerprints (``medattn.study.blinding``), once per study."""
    return blinding.fingerprints(_records.case_set(_study)[0])


@st.cache_data(max_entries=256, show_spinner=False)
def _fingerprint(case_key: str, frame: int, _case: Case) -> np.ndarray:
    return blinding.fingerprint(_case.scan.frame(frame))


def kept_from_review(case: Case, frame: int) -> str | None:
    """Why Review does not show the case's frame to this user, or None: it is a case of an open study they read."""
    who = user()
    if not who.verified:
        return None
    store = review_store(say_why=False)  # the page says why, where it saves
    if store is None:  # then no study can be read either; the scan is shown, as it is for reviewing
        return None
    records = StudyStore(store)
    study = blinding.study_holding(
        _fingerprint(case.key, frame, case),
        who,
        records.studies(),
        lambda s: _study_cases(s.id, s.created_at.isoformat(), s, records),
    )
    return None if study is None else blinding.kept_wording(study)


@st.cache_resource(show_spinner=False)
def _secret() -> bytes:
    return installation_secret()


def secret() -> bytes:
    """The installation secret, which keys every scan, file and study hash."""
    return _secret()


def signed_in() -> Identity | None:
    """Who is using the app: in a personal app, its one local user; in a shared one (``medattn.access``), a user
    signed in with the hospital's identity provider and given a role, or None. For None, app.py serves ``locked``
    at every page's address, so no page, and no data, is shown to anyone else."""
    if not deployment(os.environ, st.get_option("server.address")).shared:
        st.session_state.identity = LOCAL_USER
        return LOCAL_USER
    configured = _sign_in_configured()
    claims = st.user.to_dict() if configured and st.user.is_logged_in else None
    admitted = admit(configured, claims, os.environ, time.time())
    if claims is not None and admitted is not Refusal.EXPIRED:
        with st.sidebar:
            st.caption(f"Signed in as {escape_markdown(identity(claims, os.environ).label)}")
            st.button("Sign out", on_click=st.logout, key="sign-out")
    st.session_state.identity = admitted if isinstance(admitted, Identity) else None
    st.session_state.refusal = None if isinstance(admitted, Identity) else admitted
    return st.session_state.identity


def locked() -> None:
    """What a shared app shows at every address to anyone it has not let in, by ``signed_in``'s reason: what to
    configure, the sign-in button, or that the signed-in account has no role here."""
    refusal = st.session_state.get("refusal")
    if refusal is Refusal.UNCONFIGURED:
        reasons = deployment(os.environ, st.get_option("server.address")).reasons
        st.title("Sign-in is not configured")
        st.error(
            "This app is shared, so every page asks who is using it, and no identity provider is configured. "
            f"It is shared because {'; '.join(reasons)}. Add an [auth] section (redirect_uri, cookie_secret, "
            "client_id, client_secret, server_metadata_url) to .streamlit/secrets.toml, as the documentation's "
            "Operations page shows for Keycloak, Entra ID and Okta, and start the app again.",
            icon=":material/lock:",
        )
    elif refusal is Refusal.NO_ROLE:
        st.title("No role in this app")
        st.error(
            f"You are signed in as {escape_markdown(identity(st.user.to_dict(), os.environ).label)}, but your "
            "account has none of this app's roles (reader, coordinator, PACS). Ask the app's administrator to "
            "grant one.",
            icon=":material/lock:",
        )
    else:
        st.title("medattn")
        st.warning(RESEARCH_NOTICE, icon="⚠️")
        if refusal is Refusal.EXPIRED:
            st.info(
                f"Your sign-in is more than {session_hours(os.environ):g} hours old: sign in again.",
                icon=":material/lock_clock:",
            )
        else:
            st.info("This app is shared by a department: sign in to use it.", icon=":material/lock:")
        st.button("Sign in with your hospital account", on_click=st.login, type="primary")


def user() -> Identity:
    """The user app.py let in on this run; pages run only for one."""
    who = st.session_state.get("identity")
    if who is None:
        raise RuntimeError("a page ran for a user who was not let in")  # app.py serves only locked() then
    return who


def _sign_in_configured() -> bool:
    """Whether ``st.login`` has an identity provider to send users to: an [auth] section in the secrets."""
    try:
        return bool(st.secrets.get("auth"))
    except FileNotFoundError:  # no secrets file at all
        return False


def pacs() -> Pacs | None:
    """The DICOMweb server ``MEDATTN_DICOMWEB_URL`` names, or None where none is set or the user's role does not
    allow the PACS; a setting that cannot be used is said on the page, once, and treated as none."""
    if not user().may(PACS):
        return None
    try:
        return _pacs(os.environ.get("MEDATTN_DICOMWEB_URL", ""))
    except PacsError as error:
        show_error(error)
        return None


@st.cache_resource(show_spinner=False)
def _pacs(address: str) -> Pacs | None:
    """One client per server address (the argument keys the cache: a changed setting is not served stale)."""
    return Pacs.from_environment() if address else None


@st.cache_data(max_entries=64, show_spinner=False)
def source_header(case_key: str, _case: Case) -> pydicom.Dataset:
    """The header of a DICOM case, for its DICOM results; a PacsError says why a case can have none."""
    return source_dataset(_case.content)


def scan_key_of(case: Case) -> str:
    return _scan_key(case.key, case.instance_uid, case.content)


@st.cache_data(max_entries=1024, show_spinner=False)
def _scan_key(case_key: str, instance_uid: str | None, _content: bytes) -> str:
    """Once per file, not per rerun: for a non-DICOM file the key is an HMAC over all its bytes."""
    return scan_key(_secret(), instance_uid, _content)
