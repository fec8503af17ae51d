"""Reader studies and readers' marks end to end: Debian's chromium, driven by Playwright, against a real
``streamlit run app.py`` that is killed mid-study and started again on the same store.

Screenshots go to $MEDATTN_ARTIFACTS (default: test-artifacts/).
"""

from __future__ import annotations

import os
import re
import signal

import numpy as np
import pytest

from medattn.benchmark import FINDINGS, generate_case
from medattn.explain import EXPLAINERS
from medattn.review.marks import Mark
from medattn.review.store import ReviewStore
from medattn.study.records import StudyStore
from tests.app.browser_support import (
    ARTIFACTS,
    ROOT,
    VIEWER,
    WAIT_MS,
    in_viewer,
    on_page,
    require_chromium,
    server_pid,
    serving_app,
    settle,
    wait_for_viewer,
)
from tests.app.test_browser import choose

require_chromium()

from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.slow

STUDY = {"seed": 4242, "size": 256, "cases": 2, "prevalence": 0.5}  # one case with a nodule, one without
ARMS = ("No overlay", "Attention")
NODULE = FINDINGS.index("nodule")
MARKED_POINT = (100.5, 140.5)  # on a study case of 256 px, in its pixels


def open_app(browser, url: str, page_name: str) -> Page:
    page = browser.new_context(viewport={"width": 1400, "height": 1100}, accept_downloads=True).new_page()
    page.goto(url)
    expect(page.get_by_text("not for diagnosis")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("link", name=page_name).click()
    return page


def candidate_cases() -> list[tuple[np.ndarray, bool]]:
    """Every benchmark case the study could hold (the first of the seed's stream), as shown (uint8), with
    whether a nodule is present: how the test recognises the case on screen without asking the app."""
    cases = [generate_case(STUDY["seed"], index, STUDY["size"]) for index in range(40)]
    return [(np.round(c.image * 255).astype(np.uint8), bool(c.labels[NODULE])) for c in cases]


def shown_pixels(page: Page) -> np.ndarray:
    """The values the reading viewer holds, as an image (uint8 rows x columns)."""
    wait_for_viewer(page)
    rows, columns, values = in_viewer(
        page,
        """() => { const { dimensions, scalarData } = window.medattn.viewport.getImageData();
                   return [dimensions[1], dimensions[0], Array.from(scalarData)]; }""",
    )
    return np.asarray(values, dtype=np.uint8).reshape(rows, columns)


def shown_case(page: Page, candidates) -> int:
    """Which candidate the reading on screen shows, by its pixels."""
    pixels = shown_pixels(page).astype(np.float32)
    differences = [np.abs(pixels - image).mean() for image, _ in candidates]
    assert min(differences) == 0  # the case exactly, in every arm: it was sent as JPEG, a confound between arms
    return int(np.argmin(differences))


def answer_for(reader: str, nodule: bool, arm: str) -> tuple[bool, str]:
    """Each reader's reading, by the truth and the arm: (call, confidence key). Confidence keys set the
    slider to 0 (Home), 100 (End) or leave it at 50 (none). Dr A misses a nodule without the overlay."""
    if reader == "Dr A":
        return (nodule, "End") if arm == "Attention" else (False, "Home")
    return (nodule, "none") if nodule else (arm == "No overlay", "Home")


CONFIDENCE = {"End": 100, "none": 50, "Home": 0}


def read(page: Page, reader: str, count: int, candidates, seen: list, mark: bool = False) -> None:
    """Save ``count`` readings as ``reader``, recording (case, arm) in ``seen``; each shows its scan at the same
    size, whatever its arm. ``mark``: the first reading also marks a point on its scan, with the viewer's tool."""
    sizes = set()
    for index in range(count):
        heading = page.get_by_role("heading", name="Reading")
        expect(heading).to_be_visible(timeout=WAIT_MS)
        number = heading.inner_text()
        arm = next(a for a in ARMS if page.get_by_text(f"Shown with this reading: {a.lower()}").count())
        case = shown_case(page, candidates)
        sizes.add(page.frame_locator(VIEWER).locator("#window").inner_text().split("Zoom")[1])
        # The page's widget keys name the reading by an opaque key: they spelled out the case position and arm.
        keys = set(re.findall(r"st-key-(?:call|sure)-\w+?-([\w-]+)", page.content()))
        assert keys and all(re.fullmatch(r"[0-9a-f]{24}", key) for key in keys), keys
        present, key = answer_for(reader, candidates[case][1], arm)
        seen.append((case, arm))
        if mark and index == 0:
            draw_in_viewer(page, "Pulmonary nodule", "Point", [MARKED_POINT])
        form = page.locator("[data-testid=stForm]")
        form.get_by_text("Present" if present else "Absent", exact=True).click()
        if key != "none":
            form.get_by_role("slider").focus()
            page.keyboard.press(key)
        form.get_by_role("button", name="Save and show the next case").click()
        expect(page.get_by_role("heading", name=number, exact=True)).to_have_count(0, timeout=WAIT_MS)
        settle(page)
    assert len(sizes) == 1, sizes  # the arms once showed the scan at 512 px and at 240 px: a confound


def table_rows(table) -> list[list[str]]:
    """An st.table's cells, row by row, header first."""
    table.locator("tbody tr").first.wait_for(timeout=WAIT_MS)
    return [[cell.inner_text().strip() for cell in row.locator("th, td").all()] for row in table.locator("tr").all()]


def set_up_study(page: Page, name: str, readers: str | None = None) -> None:
    """On the Reader study page, set up ``STUDY`` (nodules alone, no overlay against attention), enrolling
    ``readers`` (e-mail addresses, in a shared app)."""
    page.get_by_text("Set up a study", exact=True).click()
    page.get_by_label("Study name").fill(name)
    for label, value in (("Benchmark seed", STUDY["seed"]), ("Image size (px)", STUDY["size"]),
                         ("Cases", STUDY["cases"])):  # fmt: skip
        page.get_by_label(label, exact=True).fill(str(value))
    page.get_by_role("combobox", name="Findings to read").click()
    page.keyboard.press("Backspace")  # the last two of nodule, effusion, cardiomegaly: nodule is read alone
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    if readers is not None:
        page.get_by_role("textbox", name="Readers' e-mail addresses, one per line").fill(readers)
    page.get_by_role("button", name="Create the study").click()
    expect(page.get_by_text("Study created: 2 cases in 2 arms, 4 readings per reader")).to_be_visible(timeout=WAIT_MS)


def start_reading(page: Page, reader: str) -> None:
    page.get_by_label("Your name, as a reader").fill(reader)
    page.get_by_label("Your name, as a reader").press("Enter")
    expect(page.get_by_text("readings saved")).to_be_visible(timeout=WAIT_MS)
    settle(page)


def expected_figures(seen: dict[str, list], candidates) -> dict[str, tuple[float, float, float]]:
    """Sensitivity, specificity and AUC per arm, averaged over readers, counted by hand from the answers."""
    figures = {}
    for arm in ARMS:
        per_reader = []
        for reader, readings in seen.items():
            truths, ratings, calls = [], [], []
            for case, reading_arm in readings:
                if reading_arm == arm:
                    present, key = answer_for(reader, candidates[case][1], arm)
                    truths.append(candidates[case][1])
                    calls.append(present)
                    ratings.append(50 + (1 if present else -1) * CONFIDENCE[key] / 2)
            positives = [r for r, t in zip(ratings, truths, strict=True) if t]
            negatives = [r for r, t in zip(ratings, truths, strict=True) if not t]
            pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p in positives for n in negatives]
            per_reader.append(
                (
                    sum(c for c, t in zip(calls, truths, strict=True) if t) / len(positives),
                    sum(not c for c, t in zip(calls, truths, strict=True) if not t) / len(negatives),
                    sum(pairs) / len(pairs),
                )
            )
        figures[arm] = tuple(float(np.mean([f[i] for f in per_reader])) for i in range(3))
    return figures


def test_a_study_read_by_two_readers_survives_a_killed_server_and_its_results_match_a_hand_count(browser, tmp_path):
    candidates = candidate_cases()
    seen: dict[str, list] = {"Dr A": [], "Dr B": []}
    data = tmp_path / "data"
    with serving_app(data, tmp_path / "first.log") as url:
        setup = open_app(browser, url, "Reader study")
        set_up_study(setup, "Overlay pilot")
        setup.screenshot(path=ARTIFACTS / "study-setup.png", full_page=True)

        readers = {}
        for reader in seen:
            readers[reader] = open_app(browser, url, "Reader study")
            start_reading(readers[reader], reader)
        read(readers["Dr A"], "Dr A", 3, candidates, seen["Dr A"])
        read(readers["Dr B"], "Dr B", 1, candidates, seen["Dr B"], mark=True)
        readers["Dr A"].screenshot(path=ARTIFACTS / "study-reading.png", full_page=True)
        os.kill(server_pid(url), signal.SIGKILL)  # mid-study, with no warning

    with serving_app(data, tmp_path / "second.log") as url:
        for reader, done in (("Dr A", 3), ("Dr B", 1)):
            page = open_app(browser, url, "Reader study")
            start_reading(page, reader)
            expect(page.get_by_text(f"{done} of 4 readings saved")).to_be_visible(timeout=WAIT_MS)
            read(page, reader, 4 - done, candidates, seen[reader])
            expect(page.get_by_text("You have read every case in every arm")).to_be_visible(timeout=WAIT_MS)

        for readings in seen.values():  # every case once per arm, none lost, none twice
            assert sorted(readings) == sorted({(case, arm) for case, _ in readings for arm in ARMS})
        assert seen["Dr A"] != seen["Dr B"]  # each reader's own order

        results = open_app(browser, url, "Reader study")
        results.get_by_text("Results", exact=True).click()
        expect(results.get_by_text("The results are shown once the study is closed")).to_be_visible(timeout=WAIT_MS)
        assert results.locator("[data-testid=stTable]").count() == 0  # no figure while it is open
        results.get_by_role("button", name="Close the study").click()
        expect(results.get_by_text("2 readers")).to_be_visible(timeout=WAIT_MS)
        rows = {row[0]: row for row in table_rows(results.locator("[data-testid=stTable]").first)}
        expected = expected_figures(seen, candidates)
        for arm, (sensitivity, specificity, auc) in expected.items():
            _, finding, *figures = rows[arm]
            assert finding == "Pulmonary nodule"
            assert [float(f) for f in figures[:3]] == pytest.approx([sensitivity, specificity, auc], abs=5e-4)
        (header, comparison) = table_rows(results.locator("[data-testid=stTable]").nth(1))
        difference = float(comparison[header.index("AUC difference")])
        assert comparison[1] == "Attention"
        assert difference == pytest.approx(expected["Attention"][2] - expected["No overlay"][2], abs=5e-4)
        results.screenshot(path=ARTIFACTS / "study-results.png", full_page=True)
    store = ReviewStore.open(data)
    records = StudyStore(store)
    (study,) = records.studies()
    marked = [reading.marks for reading in records.readings(study, "Dr B") if reading.marks]
    store.close()
    (marks,) = marked  # the one reading marked, saved with its mark in the scan's pixels
    assert marks["nodule"]["kind"] == "point"
    np.testing.assert_allclose(marks["nodule"]["points"], [MARKED_POINT], atol=1)


def draw_in_viewer(page: Page, finding: str, tool: str, path: list[tuple[float, float]]) -> None:
    """Choose ``finding`` under "Your review", then draw with the viewer's ``tool`` (Point, Box or Outline) along
    ``path``, in the scan's pixels (x, y: pixel i spans i to i + 1), as a reader drags the mouse."""
    choose(page, "Mark where you see", finding)
    viewer = page.frame_locator(VIEWER)
    expect(viewer.locator("#marking-for")).to_have_text(finding, timeout=WAIT_MS)
    viewer.get_by_role("button", name=tool, exact=True).click()
    settle(page)
    page.locator(VIEWER).scroll_into_view_if_needed()  # the mouse reaches only what is on screen
    wait_for_viewer(page)  # and where it stays: the viewer refits its height when the page above it changes
    (start, *rest) = [on_page(page, x - 0.5, y - 0.5) for x, y in path]  # on_page takes pixel centres
    page.mouse.move(*start)
    page.mouse.down()
    for point in rest:
        page.mouse.move(*point, steps=4)
    page.mouse.up()
    expect(page.get_by_role("button", name=f"✕ {finding}")).to_be_visible(timeout=WAIT_MS)


@pytest.fixture(scope="module")
def app_data(tmp_path_factory):
    return tmp_path_factory.mktemp("study-browser")


@pytest.fixture(scope="module")
def app_url(app_data):
    """One server for the tests that need no restart."""
    with serving_app(app_data / "data", app_data / "streamlit.log") as url:
        yield url


def test_marks_drawn_with_the_viewers_tools_are_stored_in_scan_pixels_reshown_and_measured(browser, app_url, app_data):
    """A box round the synthetic nodule sample's nodule (left of centre, upper half of its lung), a point on the
    effusion side and an outline round the heart, drawn in the reading viewer; the store keeps them in the scan's
    own pixels (512 x 512), the next session's viewer shows them again, and the Model page measures them."""
    box, point = [(92, 164), (194, 266)], [(400.5, 380.5)]
    outline = [(180, 300), (330, 300), (330, 420), (180, 420), (182, 302)]
    for visit in ("draw", "reopen"):
        page = open_app(browser, app_url, "Review")
        page.locator("[data-testid=stSidebar] input[type=file]").set_input_files(
            [ROOT / "assets" / "samples" / "synthetic-nodule.png"]
        )
        expect(page.get_by_text("Attention overlay —")).to_be_visible(timeout=WAIT_MS)
        page.get_by_label("Reviewer").fill("Dr Marks")
        page.get_by_label("Reviewer").press("Enter")
        wait_for_viewer(page)
        if visit == "reopen":  # a new session: the marks come back from the store, drawn in the viewer
            expect(page.get_by_role("button", name="✕ Pulmonary nodule")).to_be_visible(timeout=WAIT_MS)
            expect(page.frame_locator(VIEWER).locator("#overlay")).to_have_attribute(
                "data-marks", "nodule:box effusion:point cardiomegaly:outline", timeout=WAIT_MS
            )
            page.screenshot(path=ARTIFACTS / "review-mark-reshown.png", full_page=True)
            break
        draw_in_viewer(page, "Pulmonary nodule", "Box", box)
        draw_in_viewer(page, "Pleural effusion", "Point", point)
        draw_in_viewer(page, "Cardiomegaly", "Outline", outline)
        form = page.locator("[class*=st-key-your-review-]")
        for radio in form.locator("[data-testid=stRadio]").all():
            radio.get_by_text("Agree", exact=True).click()
        form.get_by_role("combobox", name="Findings present, in your reading").click()
        page.get_by_role("option", name="Pulmonary nodule").click()
        page.keyboard.press("Escape")
        form.get_by_role("button", name="Save review").click()
        expect(page.get_by_text("Review saved")).to_be_visible(timeout=WAIT_MS)
        page.screenshot(path=ARTIFACTS / "review-mark-drawn.png", full_page=True)

    store = ReviewStore.open(app_data / "data")
    (review,) = [r for r in store.reviews() if r.reviewer == "Dr Marks"]
    store.close()
    marks = {finding: Mark.from_json(finding, mark) for finding, mark in review.marks.items()}
    # Where the mouse went, in scan pixels, to within one (the scan is drawn at under 2 screen pixels a pixel).
    assert marks["nodule"].kind == "box"
    np.testing.assert_allclose(marks["nodule"].points, box, atol=1)
    assert marks["effusion"].kind == "point"
    np.testing.assert_allclose(marks["effusion"].points, point, atol=1)
    assert marks["cardiomegaly"].kind == "outline"
    drawn = np.array(marks["cardiomegaly"].points)
    assert drawn[:, 0].min() == pytest.approx(180, abs=1) and drawn[:, 0].max() == pytest.approx(330, abs=1)
    assert drawn[:, 1].min() == pytest.approx(300, abs=1) and drawn[:, 1].max() == pytest.approx(420, abs=1)

    model = open_app(browser, app_url, "Model")
    heading = model.get_by_text("Agreement with readers' marks")
    expect(heading).to_be_visible(timeout=WAIT_MS)
    heading.scroll_into_view_if_needed()
    table = model.locator("[data-testid=stTable]").filter(has_text="readers' marks")
    rows = table_rows(table)[1:]
    attention = next(row for row in rows if row[0] == "Attention" and row[1] == "Pulmonary nodule")
    assert attention[2] == "1" and attention[3] == "1.00"  # one mark, and the attention's peak inside it
    assert 0 < float(attention[4]) <= 1
    assert {row[0] for row in rows} == {e.title for e in EXPLAINERS.values()}  # every method, measured
    model.screenshot(path=ARTIFACTS / "model-reader-agreement.png", full_page=True)


def test_a_study_of_an_uploaded_labelled_folder_is_read_from_its_stored_pixels(browser, app_url, tmp_path):
    folder = tmp_path / "cases"
    for finding, name in (("nodule", "synthetic-nodule.png"), ("normal", "synthetic-normal.png")):
        (folder / finding).mkdir(parents=True)
        (folder / finding / name).write_bytes((ROOT / "assets" / "samples" / name).read_bytes())
    page = open_app(browser, app_url, "Reader study")
    page.get_by_text("Set up a study", exact=True).click()
    page.get_by_text("A labelled folder", exact=True).click()
    page.get_by_label("Study name").fill("Uploaded pilot")
    page.locator("[data-testid=stForm] input[type=file]").set_input_files(folder)
    expect(page.get_by_role("button", name="Remove cases/normal/synthetic-normal.png")).to_be_visible(timeout=WAIT_MS)
    page.get_by_role("combobox", name="Findings to read").click()
    page.keyboard.press("Backspace")
    page.keyboard.press("Backspace")
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Create the study").click()
    expect(page.get_by_text("Study created: 2 cases in 2 arms, 4 readings per reader")).to_be_visible(timeout=WAIT_MS)
    page.get_by_text("Read", exact=True).click()
    start_reading(page, "Dr Upload")
    expect(page.get_by_role("heading", name="Reading 1 of 4")).to_be_visible()
    assert shown_pixels(page).shape == (512, 512)  # the sample's own pixels, kept
    page.screenshot(path=ARTIFACTS / "study-uploaded-folder.png", full_page=True)
