import cv2
import numpy as np
import pytest
import torch

from medattn import Predictor, load_scan
from medattn.assets import synthetic_samples
from medattn.benchmark import FINDINGS, generate_case
from medattn.explain import EXPLAINERS
from medattn.explain.quality import dilate, pointing_hit
from medattn.model.calibration import roc_auc
from medattn.model.predictor import DIFFUSE_SPREAD, attention_spread
from tests.conftest import PYDICOM_DATA_FILES, all_frames, model_with_diffuse_attention

FRESH_SEED = 7777  # a benchmark seed used by no training, validation or evaluation run


@pytest.fixture(scope="module")
def fresh_cases():
    return [generate_case(FRESH_SEED, i) for i in range(300)]


def test_default_model_separates_findings_on_unseen_cases(predictor, fresh_cases):
    predictions = [predictor.predict(case.image) for case in fresh_cases]
    labels = np.stack([case.labels for case in fresh_cases])
    for c, name in enumerate(FINDINGS):
        scores = [p.probabilities[name] for p in predictions]
        assert roc_auc(labels[:, c], scores) > 0.9, name


def test_attention_points_at_the_findings(predictor, fresh_cases):
    """Pointing game on unseen cases: the attention maximum inside the finding's mask, grown by one token cell."""
    cell = 128 // predictor.model.config.grid_size
    hits = {name: [] for name in FINDINGS}
    for case in fresh_cases:
        prediction = predictor.predict(case.image)
        for c, name in enumerate(FINDINGS):
            if case.labels[c]:
                hits[name].append(pointing_hit(prediction.attention[name].values, dilate(case.masks[c], cell)))
    assert np.mean(hits["nodule"]) >= 0.9
    assert np.mean([hit for per_class in hits.values() for hit in per_class]) >= 0.85


def test_attention_is_returned_on_the_input_geometry(predictor, cr_jpeg2000_file):
    scan = load_scan(cr_jpeg2000_file)
    prediction = predictor.predict(scan)
    height, width = all_frames(scan).shape[1:3]
    assert height != width
    for name, heatmap in prediction.attention.items():
        assert heatmap.values.shape == (height, width) and heatmap.values.dtype == np.float32
        assert heatmap.values.min() >= 0 and heatmap.values.max() == pytest.approx(1.0)
        assert (heatmap.method, heatmap.class_name) == ("attention", name) and heatmap.seconds > 0
    assert set(prediction.probabilities) == set(FINDINGS)
    assert all(0.0 <= p <= 1.0 for p in prediction.probabilities.values())
    assert set(prediction.labels) == {c for c, p in prediction.probabilities.items() if p >= prediction.thresholds[c]}


def test_shipped_samples_show_their_named_findings(predictor):
    """Each sample's named findings score far above the normal sample's; nothing unnamed is called."""
    samples = synthetic_samples()
    assert len(samples) >= 5
    baseline = predictor.predict(load_scan(samples["normal"])).probabilities
    assert predictor.predict(load_scan(samples["normal"])).labels == []
    for name, path in samples.items():
        named = set() if name == "normal" else set(name.split("-"))
        prediction = predictor.predict(load_scan(path))
        assert set(prediction.labels) <= named, name
        for finding in named:
            assert prediction.probabilities[finding] > 10 * baseline[finding], (name, finding)


def embed_in_radiograph(case_image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The case scaled to 1841 px wide and padded to 1955 rows, as a tall 16-bit radiograph; and its mask."""
    side, height = 1841, 1955
    top = (height - side) // 3  # off-centre, so a centred-padding assumption would show
    image = np.zeros((height, side), dtype=np.uint16)
    image[top : top + side] = np.round(cv2.resize(case_image, (side, side)) * 4000).astype(np.uint16)
    big_mask = np.zeros((height, side), dtype=bool)
    big_mask[top : top + side] = cv2.resize(mask.astype(np.uint8), (side, side), interpolation=cv2.INTER_NEAREST) > 0
    return image, big_mask


def test_every_method_returns_a_heatmap_on_the_original_geometry(predictor):
    case = generate_case(FRESH_SEED, 3)
    image, _ = embed_in_radiograph(case.image, case.masks[0])
    for method in EXPLAINERS:
        heatmap = predictor.explain(image, "nodule", EXPLAINERS[method])
        assert heatmap.values.shape == image.shape and heatmap.values.dtype == np.float32, method
        assert heatmap.values.min() >= 0 and heatmap.values.max() == pytest.approx(1.0), method
        assert (heatmap.method, heatmap.class_name) == (method, "nodule") and heatmap.seconds > 0


@pytest.mark.slow
def test_attention_on_a_large_radiograph_sits_on_the_nodule(predictor, fresh_cases):
    """Known answer: the nodule's mask, carried to the 1955 x 1841 image the same way as its pixels."""
    nodule_cases = [case for case in fresh_cases if case.labels[0]][:10]
    token_cell = 1955 / predictor.model.config.grid_size  # one token of the grid, in original pixels
    hits = []
    for case in nodule_cases:
        image, mask = embed_in_radiograph(case.image, case.masks[0])
        heatmap = predictor.predict(image).attention["nodule"]
        hits.append(pointing_hit(heatmap.values, dilate(mask, round(token_cell))))
    assert np.mean(hits) >= 0.9


def test_real_scans_are_unlike_the_training_data_and_synthetic_ones_are_not(predictor, fresh_cases):
    limit = predictor.card.unlikeness.threshold
    fresh = [predictor.predict(case.image) for case in fresh_cases[:100]]
    assert all(p.unlikeness_limit == limit for p in fresh)
    assert np.mean([p.unlike_training_data for p in fresh]) <= 0.02  # ~0.5% by construction
    larger = [predictor.predict(generate_case(FRESH_SEED, i, 512).image) for i in range(100)]
    # The same kind of image drawn at 512 px: about 0.5% by construction, as at 128 px (the limit is fitted
    # on held-out cases at 128, 256 and 512 px), so the same bound.
    assert np.mean([p.unlike_training_data for p in larger]) <= 0.02
    for name in ("RG1_J2KR.dcm", "US1_J2KR.dcm", "MR2_J2KR.dcm", "693_J2KR.dcm"):  # chest CR, US, MR, CT
        real = predictor.predict(load_scan(PYDICOM_DATA_FILES / name))
        assert real.unlike_training_data, name


def test_a_grainy_radiograph_is_withheld_for_its_noise_and_the_warning_says_so(predictor, fresh_cases):
    """Film noise of SD 0.06 leaves the features near the training images' (the distance alone kept 87% of such
    scans, docs/model.md) while half of them are called wrongly: the noise limit withholds them, and says why."""
    case = fresh_cases[0]
    grainy = np.clip(case.image + np.random.default_rng(0).normal(0, 0.06, case.image.shape), 0, 1)
    clean, noisy = predictor.predict(case.image), predictor.predict(grainy)
    assert not clean.unlike_training_data and clean.noise < clean.noise_limit
    assert noisy.unlike_training_data and noisy.too_noisy and noisy.unlikeness < noisy.unlikeness_limit
    assert noisy.unlikeness_warning.startswith("This scan is noisier than the images this model was trained on")
    assert noisy.gate_reason.startswith("Noisier than the training images (noise 0.")
    # Far noisier still, it is unlike the training images too, and the warning names both limits.
    noisier = predictor.predict(np.clip(case.image + np.random.default_rng(1).normal(0, 0.3, case.image.shape), 0, 1))
    assert noisier.unlikeness > noisier.unlikeness_limit and noisier.noise > noisier.noise_limit
    assert "(unlikeness" in noisier.unlikeness_warning and "and is noisier than" in noisier.unlikeness_warning
    # Its middle half, letterboxed with flat padding above and below: the noise is read inside the letterbox, so
    # the padding does not hide it.
    assert predictor.predict(grainy[32:96]).noise == pytest.approx(noisy.noise, rel=0.2)


def test_the_app_training_and_batch_scoring_feed_the_model_the_same_input_for_a_file(predictor, tmp_path):
    """One path from pixels to model input: a benchmark case written as a 16-bit PNG gives the app, a training
    folder and batch scoring the same input, and that input is the one training made from the case itself."""
    from medattn.batch import ScanFiles
    from medattn.training.datasets import image_folder
    from medattn.training.inputs import ModelInputs

    cases = [generate_case(FRESH_SEED, i) for i in range(4)]
    for index, case in enumerate(cases):  # two class folders, so image_folder reads them as a dataset
        folder = tmp_path / ("a" if index % 2 else "b")
        folder.mkdir(exist_ok=True)
        cv2.imwrite(str(folder / f"case{index}.png"), np.round(case.image * 65535).astype(np.uint16))
    files = sorted(tmp_path.rglob("*.png"))
    recipe = predictor.preprocessing
    app = [predictor.prepare(load_scan(path))[0][0].numpy() for path in files]
    decoded = ScanFiles(files, recipe, previews=False, secret=b"secret")
    batch = [decoded[index].model_input.numpy() for index in range(len(files))]
    folders = [image_folder(tmp_path, split) for split in ("train", "val", "test")]
    from_folders = [x.numpy() for ds in folders for x, _ in ModelInputs(ds.images, recipe).batches()]
    from_folders = np.concatenate(from_folders)  # the files read batch by batch, as training reads them
    for app_input, batch_input in zip(app, batch, strict=True):
        np.testing.assert_array_equal(app_input, batch_input)
        assert any(np.array_equal(app_input, row) for row in from_folders)  # the same bytes, the same input
    by_name = {path.stem: app_input for path, app_input in zip(files, app, strict=True)}
    for index, case in enumerate(cases):  # and what training builds from the benchmark's own float image
        direct = recipe.prepare(case.image)[0]
        np.testing.assert_allclose(by_name[f"case{index}"], direct, atol=2e-3)  # 16-bit rounding only


def test_probabilities_through_a_file_are_those_of_training_s_path(predictor, fresh_cases, tmp_path):
    """The gap the issue measured (up to 0.14 through 16-bit PNGs, 1 decision in 300 flipped) is closed."""
    gaps, flips = [], 0
    for index, case in enumerate(fresh_cases[:60]):
        path = tmp_path / f"{index}.png"
        cv2.imwrite(str(path), np.round(case.image * 65535).astype(np.uint16))
        through_file, direct = predictor.predict(load_scan(path)), predictor.predict(case.image)
        gaps += [abs(through_file.probabilities[c] - direct.probabilities[c]) for c in FINDINGS]
        flips += through_file.labels != direct.labels
    assert max(gaps) < 0.01 and flips == 0


def test_the_display_window_never_changes_the_model_input(predictor, ct_file):
    from tests.conftest import dicom_with

    original = predictor.prepare(load_scan(ct_file))[0]
    for centre, width in (("40", "80"), ("-600", "1500"), ("3000", "10")):
        rewindowed = load_scan(dicom_with(ct_file, WindowCenter=centre, WindowWidth=width))
        assert rewindowed.default_window == (float(centre), float(width))
        assert torch.equal(predictor.prepare(rewindowed)[0], original)


def test_heatmaps_asked_at_a_screen_s_size_are_the_full_size_ones_shrunk(predictor):
    from medattn.scan.resizing import shrink

    case = generate_case(FRESH_SEED, 3)
    image, _ = embed_in_radiograph(case.image, case.masks[0])  # 1955 x 1841
    full, small = predictor.predict(image), predictor.predict(image, max_side=256)
    assert small.probabilities == full.probabilities
    for name, heatmap in small.attention.items():
        expected = shrink(full.attention[name].values, 256)
        assert heatmap.values.shape == expected.shape == (256, 241)
        assert np.abs(heatmap.values - expected).max() < 0.05  # both from one 32 x 32 map, resampled once or twice
        assert heatmap.values.max() == pytest.approx(1.0)


def test_attention_maps_carry_their_model_wide_scale_and_spread(predictor, tmp_path):
    """The peak is about the largest token weight times the token count (relative to uniform); the spread is the
    attention's perplexity over the token count. A present nodule's attention is focal; attention spread evenly
    over the tokens is 1x uniform everywhere and diffuse by the app's validated level."""
    samples = synthetic_samples()
    nodule_scan = load_scan(samples["nodule"].read_bytes())
    nodule = predictor.predict(nodule_scan, max_side=256)
    model_input, _ = predictor.prepare(nodule_scan)
    weights = predictor.run(model_input).attention[0, predictor.classes.index("nodule")]  # (h, w)
    token_peak = float(weights.max()) * weights.numel()
    # The map is the token grid resampled onto the image, which smooths its sharpest token a little.
    assert 0.6 * token_peak < nodule.attention["nodule"].peak_times_uniform <= token_peak
    assert 1 / weights.numel() <= nodule.spread["nodule"] < 0.1  # a few tokens hold the weight
    normal_scan = load_scan(samples["normal"].read_bytes())
    focal = predictor.predict(normal_scan, max_side=256)
    diffuse = Predictor.load(model_with_diffuse_attention("cardiomegaly", tmp_path)).predict(normal_scan, max_side=256)
    assert diffuse.spread["cardiomegaly"] == pytest.approx(1.0)
    assert diffuse.spread["cardiomegaly"] > DIFFUSE_SPREAD >= focal.spread["cardiomegaly"]
    assert diffuse.attention["cardiomegaly"].peak_times_uniform == pytest.approx(1.0, abs=0.01)
    assert diffuse.spread["nodule"] == focal.spread["nodule"]  # the other findings' queries are untouched
    uniform = torch.full((1, 8, 8), 1 / 64)
    assert attention_spread(uniform)[0] == pytest.approx(1.0)
    for method in ("gradcam", "occlusion"):  # no model-wide scale: none is claimed
        assert predictor.explain(nodule_scan, "nodule", EXPLAINERS[method], max_side=64).peak_times_uniform is None
