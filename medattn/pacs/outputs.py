"""A scored image's results as DICOM objects that a PACS files and a viewer shows, built with highdicom.

For one source image, each kind in its own new series of the source's study: a Parametric Map of the chosen method's
map for the chosen finding (float values on the source's pixel grid, with a real-world value mapping
that says what they mean), a Segmentation of the region the overlay colours for each finding the model
calls present, a Comprehensive SR holding a TID 1500 measurement report (each finding's calibrated
probability, threshold and call, the model, the unlikeness and its limit, and a reader's verdicts), and
a Secondary Capture of the overlay as shown, for viewers that show no parametric maps.

Everything is built in memory from the source's own attributes and handed back; nothing is stored here.
UIDs are derived from the source's, the model's and the map's names, so building the same results again
gives the same objects: storing them twice on a server replaces them rather than adding copies.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from medattn import RESEARCH_NOTICE
from medattn.errors import PacsError
from medattn.explain import EXPLAINERS, map_of
from medattn.explain.overlay import blend, map_levels
from medattn.installation import installation_secret
from medattn.model.card import ModelCard
from medattn.model.predictor import Heatmap, Prediction, Predictor
from medattn.review.store import Review
from medattn.scan import Scan
from medattn.scan.load import HEADERLESS_DICOM_STARTS, detect_kind
from medattn.scan.metadata import burned_in_text
from medattn.scan.resizing import resize, shrink

# highdicom warns about values it copies from the source (a referring physician's name, say), and the
# warning's text carries the value: like pydicom's (medattn.scan.dicom), its warnings are not let through
# to a log.
warnings.filterwarnings("ignore", module=r"highdicom(\.|$)")

MANUFACTURER = "medattn"
OVERLAY_SIDE = 1024  # the Secondary Capture drawn for batch scoring: a screen's worth
# A series per kind of object (DICOM keeps one modality to a series), numbered far from a modality's own.
SERIES_NUMBERS = {"parametric map": 9101, "segmentation": 9102, "report": 9103, "capture": 9104}
SERIES_DESCRIPTION = "medattn results - research use only, not for diagnosis"
NOT_MEANINGFUL = "NOT MEANINGFUL (unlike the model's training data)"
# Codes of our own where no standard code says the thing: a private coding scheme, as PS3.16 allows.
SCHEME = "99MEDATTN"
PROBABILITY = hd.sr.CodedConcept("probability", SCHEME, "Calibrated probability of the finding")
THRESHOLD = hd.sr.CodedConcept("threshold", SCHEME, "Decision threshold of the finding")
MODEL_CALL = hd.sr.CodedConcept("model-call", SCHEME, "Finding called present by the model")
UNLIKENESS = hd.sr.CodedConcept("unlikeness", SCHEME, "Unlikeness to the model's training data")
UNLIKENESS_LIMIT = hd.sr.CodedConcept("unlikeness-limit", SCHEME, "Unlikeness limit of the model")
NOISE = hd.sr.CodedConcept("noise", SCHEME, "Relative noise of the model input")
NOISE_LIMIT = hd.sr.CodedConcept("noise-limit", SCHEME, "Relative noise limit of the model")
UNLIKE = hd.sr.CodedConcept("unlike-training", SCHEME, "Output withheld: unlike the training data or too noisy")
READER_VERDICT = hd.sr.CodedConcept("reader-verdict", SCHEME, "Reader's verdict on the model's call")
READER_READING = hd.sr.CodedConcept("reader-reading", SCHEME, "Finding present in the reader's reading")
VERDICT_CODES = {
    verdict: hd.sr.CodedConcept(verdict, SCHEME, meaning)
    for verdict, meaning in (("agree", "Agrees"), ("disagree", "Disagrees"), ("unsure", "Unsure"))
}
UNITLESS = hd.sr.CodedConcept("1", "UCUM", "no units")
RATIO = hd.sr.CodedConcept("{ratio}", "UCUM", "ratio")
# The findings of the default model as SNOMED CT codes; another model's findings get codes of our own.
FINDING_CODES = {
    "nodule": codes.SCT.Nodule,
    "effusion": hd.sr.CodedConcept("60046008", "SCT", "Pleural effusion"),
    "cardiomegaly": hd.sr.CodedConcept("8186001", "SCT", "Cardiomegaly"),
}
# Patient Orientation letters and the patient-coordinate directions they name (PS3.3 C.7.6.1.1.1).
DIRECTIONS = {
    "L": (1, 0, 0), "R": (-1, 0, 0), "P": (0, 1, 0), "A": (0, -1, 0), "H": (0, 0, 1), "F": (0, 0, -1),
}  # fmt: skip


@dataclass(frozen=True)
class ScoredImage:
    """What the outputs say about one source image, gathered by the caller (the Review page, batch scoring).

    ``maps`` hold the chosen method's map of ``finding`` and of every finding the model calls present, on
    the source's full pixel grid (``Predictor.predict`` / ``explain`` without ``max_side``). ``overlay``
    is the picture as shown (RGB uint8), or None for no Secondary Capture. ``threshold`` is the colour
    level below which the overlay leaves heat uncoloured; the segmentation keeps what it colours.
    """

    prediction: Prediction
    card: ModelCard
    method: str
    finding: str
    maps: dict[str, Heatmap]
    overlay: np.ndarray | None = None
    threshold: float = 0.0
    model_wide: bool = True
    review: Review | None = None
    # For a scan unlike the training data, the reader chose to see the model's output anyway (as on the
    # Review page): the objects are made, each saying that it is not meaningful.
    shown_anyway: bool = False

    @property
    def withheld(self) -> bool:
        return self.prediction.unlike_training_data and not self.shown_anyway


@dataclass(frozen=True)
class ResultObjects:
    """The objects built, in a fixed order, and what was left out and why (for the page to say)."""

    datasets: list[Dataset]
    left_out: list[str] = field(default_factory=list)

    def stored_summary(self, server: str) -> str:
        """What storing these on ``server`` did, as a PACS shows it: one new series per kind of object."""
        series = len({ds.SeriesInstanceUID for ds in self.datasets})
        kinds = ", ".join(_kind(ds).replace("-", " ") for ds in self.datasets)
        return (
            f"Stored {len(self.datasets)} objects ({kinds}) in {series} new series of this study on {server}, "
            "one series per kind of object, as DICOM keeps one modality to a series."
        )

    def files(self) -> dict[str, bytes]:
        """File name -> the object as a DICOM file (Part 10), named by its kind."""
        return {f"{index:02d}-{_kind(ds)}.dcm": dicom_bytes(ds) for index, ds in enumerate(self.datasets, 1)}

    def zip(self) -> bytes:
        """Every object, and a note of what they are and what was left out, as one ZIP file."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in self.files().items():
                archive.writestr(name, content)
            archive.writestr("README.txt", "\n".join([RESEARCH_NOTICE, "", *self.left_out, ""]))
        return buffer.getvalue()


def scored_image(
    predictor: Predictor,
    scan: Scan,
    method: str = "attention",
    finding: str | None = None,
    overlay: np.ndarray | None = None,
    **details,
) -> ScoredImage:
    """Score a single-frame scan for its results: the maps on its full pixel grid, of ``finding`` (the
    most probable, if not given) and of every finding called present. Without ``overlay`` (the picture as
    a page showed it), one is drawn at most OVERLAY_SIDE px, in the scan's own window, on the model-wide
    scale. ``details``: the other fields of ``ScoredImage`` (threshold, model_wide, review, shown_anyway)."""
    prediction = predictor.predict(scan)
    scored = ScoredImage(prediction, predictor.card, method, finding or prediction.top_class, {}, None, **details)
    if scored.withheld:  # only the report is made: no map is computed
        return scored
    maps = {
        name: map_of(predictor, scan, name, method, prediction)
        for name in dict.fromkeys([scored.finding, *prediction.labels])
    }
    if overlay is None:
        image = shrink(scan.display(0), OVERLAY_SIDE)
        levels = resize(map_levels(maps[scored.finding], scored.model_wide), *image.shape[:2])
        overlay = blend(image, levels, threshold=scored.threshold)
    return replace(scored, maps=maps, overlay=overlay)


def source_dataset(content: bytes) -> Dataset:
    """The header of a source image that ``load_scan`` has read, from its file's bytes (the pixels are not
    needed)."""
    if detect_kind(content) != "DICOM" and content[:2] not in HEADERLESS_DICOM_STARTS:
        raise PacsError("DICOM results are made for DICOM images only; download the PNG or PDF report instead.")
    ds = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True, force=True)  # load_scan has read it already
    for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "Rows", "Columns"):
        if not ds.get(keyword):
            raise PacsError(
                f"This DICOM file has no {keyword}, so results cannot reference it. Export it again from the PACS."
            )
    if int(ds.get("NumberOfFrames") or 1) > 1:
        raise PacsError(
            "DICOM results are made for single-frame images; this file holds several frames. "
            "Download the PNG or PDF report instead."
        )
    return ds


def build_results(source: Dataset, scored: ScoredImage, reader: str | None = None) -> ResultObjects:
    """The DICOM objects for ``scored``, referencing ``source``. ``reader`` names the reviewer in the
    report's observer context; leave it out for objects made for sharing."""
    source = _without_invalid_spacing(source)
    prediction, card = scored.prediction, scored.card
    uid = _uid_maker(source, card, scored)
    common = dict(
        manufacturer=MANUFACTURER,
        manufacturer_model_name=card.name[:64],
        software_versions=card.version[:64],
        device_serial_number="none",
    )
    datasets, left_out = [], []
    if scored.withheld:
        left_out.append(
            "No map, segmentation or overlay: the scan is unlike the training data or too noisy for the model, so "
            "they would mean nothing. "
            "The structured report says so."
        )
    else:
        datasets.append(_parametric_map(source, scored, uid, common))
        segmentation = _segmentation(source, scored, uid, common)
        if segmentation is None:
            left_out.append("No segmentation: the model calls no finding present, so no region is outlined.")
        else:
            datasets.append(segmentation)
    datasets.append(_report(source, scored, uid, reader))
    if scored.overlay is not None and not scored.withheld:
        orientation = _orientation(source)
        if orientation is None:
            left_out.append("No secondary capture: the source states no patient orientation for its pixels.")
        else:
            datasets.append(_secondary_capture(source, scored.overlay, orientation, uid))
    for number, ds in enumerate(datasets, 1):
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: a reader's name or a model's may be any script
        ds.InstanceNumber = number
        ds.SeriesDescription = NOT_MEANINGFUL if prediction.unlike_training_data else SERIES_DESCRIPTION
    return ResultObjects(datasets, left_out)


def dicom_bytes(ds: Dataset) -> bytes:
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def map_values(heatmap: Heatmap) -> tuple[np.ndarray, hd.pm.RealWorldValueMapping]:
    """The map as stored in the Parametric Map, and the mapping that says what its numbers are: the
    attention's weight relative to uniform attention (1 = every part weighed alike), or for methods
    without that scale, the share of the map's own peak."""
    if heatmap.peak_times_uniform is not None:
        values = heatmap.values * np.float32(heatmap.peak_times_uniform)
        label, explanation, unit = "ATTN_X_UNIFORM", "Attention weight relative to uniform attention", RATIO
    else:
        values = heatmap.values
        label, explanation, unit = "SHARE_OF_PEAK", f"{EXPLAINERS[heatmap.method].title}, share of its peak", UNITLESS
    mapping = hd.pm.RealWorldValueMapping(
        lut_label=label,
        lut_explanation=explanation,
        unit=unit,
        value_range=(float(values.min()), float(values.max())),
        slope=1,
        intercept=0,
    )
    return values.astype(np.float32, copy=False), mapping


def _parametric_map(source: Dataset, scored: ScoredImage, uid: Callable[[str], str], common: dict) -> Dataset:
    values, mapping = map_values(scored.maps[scored.finding])
    low, high = float(values.min()), float(values.max())
    window = hd.VOILUTTransformation(window_center=(low + high) / 2, window_width=max(high - low, 1e-6))
    geometry, measures = _with_plane_geometry(source)
    parametric_map = hd.pm.ParametricMap(
        [geometry],
        values[None],  # (frames, rows, columns)
        uid("series parametric map"),
        SERIES_NUMBERS["parametric map"],
        uid("parametric map"),
        1,
        contains_recognizable_visual_features=False,
        real_world_value_mappings=[mapping],
        voi_lut_transformations=[window],
        content_label="MAP",
        content_description=_map_title(scored)[:64],
        pixel_measures=measures,
        **common,
    )
    parametric_map.Laterality = source.get("Laterality", "")  # General Series, type 2C: present when known
    return parametric_map


def _segmentation(source: Dataset, scored: ScoredImage, uid: Callable[[str], str], common: dict) -> Dataset | None:
    descriptions, regions = [], []
    for finding in scored.prediction.labels:
        levels = map_levels(scored.maps[finding], scored.model_wide)
        region = (levels > 0) & (levels >= scored.threshold)
        if not region.any():
            continue
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=len(descriptions) + 1,
                segment_label=f"{scored.card.display_name(finding)} ({EXPLAINERS[scored.method].title})"[:64],
                segmented_property_category=codes.SCT.Finding,
                segmented_property_type=_finding_code(finding, scored.card),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=hd.AlgorithmIdentificationSequence(
                    name=scored.card.name[:64],
                    version=scored.card.version[:64],
                    family=codes.DCM.ArtificialIntelligence,
                ),
            )
        )
        regions.append(region)
    if not regions:
        return None
    geometry, measures = _with_plane_geometry(source)
    return hd.seg.Segmentation(
        [geometry],
        np.stack(regions, axis=-1)[None].astype(np.uint8),  # (frames, rows, columns, segments)
        hd.seg.SegmentationTypeValues.BINARY,
        descriptions,
        uid("series segmentation"),
        SERIES_NUMBERS["segmentation"],
        uid("segmentation"),
        1,
        content_label="HOT_REGION",
        content_description=("NOT MEANINGFUL: " if scored.prediction.unlike_training_data else "")
        + "Where the overlay colours each finding's map",
        pixel_measures=measures,
        **common,
    )


def _report(source: Dataset, scored: ScoredImage, uids: Callable[[str], str], reader: str | None) -> Dataset:
    prediction, card, review = scored.prediction, scored.card, scored.review
    uid = uids(f"report {_review_digest(review)}")  # a new review makes a new report
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(entropy_srcs=["medattn model", card.name, card.version]),
            name=card.name[:64],
            manufacturer_name=MANUFACTURER,
            model_name=card.version[:64],
        ),
    )
    person = None
    if review is not None and reader:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name=_person_name(reader)),
        )
    algorithm = hd.sr.AlgorithmIdentification(name=card.name[:64], version=card.version[:64])
    evidence = [hd.sr.SourceImageForMeasurementGroup.from_source_image(source)]
    groups = []
    if prediction.unlikeness is not None:
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(entropy_srcs=[uid, "unlikeness"]), identifier="Unlikeness"
                ),
                algorithm_id=algorithm,
                source_images=evidence,
                measurements=[
                    hd.sr.Measurement(name=name, value=float(value), unit=UNITLESS)
                    for name, value in (
                        (UNLIKENESS, prediction.unlikeness),
                        (UNLIKENESS_LIMIT, prediction.unlikeness_limit),
                        (NOISE, prediction.noise),
                        (NOISE_LIMIT, prediction.noise_limit),
                    )
                    if value is not None  # a card fitted before the noise limit has neither noise figure
                ],
                qualitative_evaluations=[
                    hd.sr.QualitativeEvaluation(name=UNLIKE, value=_yes_no(prediction.unlike_training_data))
                ],
            )
        )
    for finding in prediction.probabilities:
        measurements, evaluations = [], []
        if not scored.withheld:  # the numbers are withheld, as on every screen
            measurements.append(
                hd.sr.Measurement(name=PROBABILITY, value=prediction.probabilities[finding], unit=UNITLESS)
            )
            if finding in prediction.thresholds:
                measurements.append(
                    hd.sr.Measurement(name=THRESHOLD, value=prediction.thresholds[finding], unit=UNITLESS)
                )
            evaluations.append(
                hd.sr.QualitativeEvaluation(name=MODEL_CALL, value=_yes_no(finding in prediction.labels))
            )
        if review is not None:
            if finding in review.verdicts and not scored.withheld:
                evaluations.append(
                    hd.sr.QualitativeEvaluation(name=READER_VERDICT, value=VERDICT_CODES[review.verdicts[finding]])
                )
            evaluations.append(
                hd.sr.QualitativeEvaluation(name=READER_READING, value=_yes_no(finding in review.corrected_labels))
            )
        if not measurements and not evaluations:
            continue
        groups.append(
            hd.sr.MeasurementsAndQualitativeEvaluations(
                tracking_identifier=hd.sr.TrackingIdentifier(
                    uid=generate_uid(entropy_srcs=[uid, finding]), identifier=finding[:64]
                ),
                finding_type=_finding_code(finding, card),
                algorithm_id=algorithm,
                source_images=evidence,
                measurements=measurements or None,
                qualitative_evaluations=evaluations or None,
            )
        )
    content = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device),
        procedure_reported=codes.SCT.ImagingProcedure,
        imaging_measurements=groups,
    )
    report = hd.sr.ComprehensiveSR(
        evidence=[source],
        content=content[0],
        series_instance_uid=uids("series report"),
        series_number=SERIES_NUMBERS["report"],
        sop_instance_uid=uid,
        instance_number=1,
        manufacturer=MANUFACTURER,
        is_complete=True,
    )
    return report


def _secondary_capture(
    source: Dataset, overlay: np.ndarray, orientation: tuple[str, str], uid: Callable[[str], str]
) -> Dataset:
    capture = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=overlay,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=uid("series capture"),
        series_number=SERIES_NUMBERS["capture"],
        sop_instance_uid=uid("capture"),
        instance_number=1,
        manufacturer=MANUFACTURER,
        patient_orientation=orientation,
        transfer_syntax_uid=pydicom.uid.ExplicitVRLittleEndian,
    )
    # The overlay is the source's pixels with the map laid over them: text burned into those stays there.
    capture.Laterality = source.get("Laterality", "")  # General Series, type 2C: present when known
    capture.BurnedInAnnotation = "NO" if burned_in_text(source) is False else "YES"  # not known: it may
    capture.ImageComments = RESEARCH_NOTICE[:10240]
    return capture


def _with_plane_geometry(source: Dataset) -> tuple[Dataset, hd.PixelMeasuresSequence | None]:
    """The source as the Parametric Map (and, for viewers, the Segmentation) needs it: the map's IOD
    requires a frame of reference and a plane position, which a projection radiograph has not. Such a
    source is given a frame of reference of the results' own (a new UID, shared by the map and the
    segmentation only), its corner at the origin, its rows and columns along the frame's x and y axes (where
    viewers take an image without an orientation to lie), its pixel spacing (1 mm where the source states
    none) and a nominal slice thickness of one pixel. The objects still lie pixel for pixel on the source,
    which they reference. Returns the source to build on and, for such a source, the pixel measures."""
    if "FrameOfReferenceUID" in source and "ImagePositionPatient" in source and "ImageOrientationPatient" in source:
        return source, None
    geometry = Dataset()
    geometry.update(source)  # a shallow copy: the source itself is left as it was
    geometry.FrameOfReferenceUID = generate_uid(entropy_srcs=[source.SOPInstanceUID, "results frame of reference"])
    geometry.PositionReferenceIndicator = ""
    geometry.ImagePositionPatient = [0.0, 0.0, 0.0]
    geometry.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    spacing = _spacing(source) or [1.0, 1.0]
    geometry.PixelSpacing = spacing
    # A projection has no slice; the segmentation's IOD asks for a thickness all the same: one pixel's, nominal.
    geometry.SliceThickness = spacing[0]
    return geometry, hd.PixelMeasuresSequence(pixel_spacing=spacing, slice_thickness=spacing[0])


def _without_invalid_spacing(source: Dataset) -> Dataset:
    """Some modalities write a Pixel Spacing of zero for "unknown"; copied into a result it makes the object
    invalid, so it is left out (a copy is changed, never the source)."""
    if "PixelSpacing" not in source or _spacing(source, ("PixelSpacing",)):
        return source
    cleaned = Dataset()
    cleaned.update(source)
    del cleaned.PixelSpacing
    return cleaned


def _spacing(source: Dataset, keywords=("PixelSpacing", "ImagerPixelSpacing")) -> list[float] | None:
    for keyword in keywords:
        try:
            spacing = [float(value) for value in source.get(keyword) or []]
        except (TypeError, ValueError):
            continue
        if len(spacing) == 2 and all(value > 0 for value in spacing):
            return spacing
    return None


def _orientation(source: Dataset) -> tuple[str, str] | None:
    """The directions of the source's rows and columns as Patient Orientation letters: its own, or the
    dominant axes of its Image Orientation (Patient)."""
    stated = [str(value)[:1] for value in source.get("PatientOrientation") or []]
    if len(stated) == 2 and all(letter in DIRECTIONS for letter in stated):
        return stated[0], stated[1]
    try:
        cosines = np.asarray([float(value) for value in source.get("ImageOrientationPatient") or []]).reshape(2, 3)
    except ValueError:
        return None
    letters = []
    for vector in cosines:
        axis = int(np.argmax(np.abs(vector)))
        letters.append(next(k for k, d in DIRECTIONS.items() if d[axis] == np.sign(vector[axis]) and d[axis] != 0))
    return letters[0], letters[1]


def _finding_code(finding: str, card: ModelCard) -> hd.sr.CodedConcept:
    code = FINDING_CODES.get(finding)
    return code if code is not None else hd.sr.CodedConcept(finding[:16], SCHEME, card.display_name(finding)[:64])


def _person_name(typed: str) -> str:
    """A reader's name as typed, as a DICOM person name: one family-name component unless it has carets."""
    name = typed.replace("\\", " ").strip()[:60]
    return name if "^" in name else f"{name}^"


def _yes_no(value: bool) -> hd.sr.CodedConcept:
    return codes.SCT.Yes if value else codes.SCT.No


def _map_title(scored: ScoredImage) -> str:
    title = f"{EXPLAINERS[scored.method].title} - {scored.card.display_name(scored.finding)}"
    return f"NOT MEANINGFUL: {title}" if scored.prediction.unlike_training_data else title


def _uid_maker(source: Dataset, card: ModelCard, scored: ScoredImage) -> Callable[[str], str]:
    """Repeatable UIDs: the same source, model, method and finding give the same objects in one installation.
    The installation's secret is one of the inputs: from public inputs alone anyone could store objects under
    these UIDs first, and a PACS that keeps the first copy would answer the clinician's store with success."""
    parts = [installation_secret().hex(), source.SOPInstanceUID, card.name, card.version, scored.method, scored.finding]
    return lambda kind: generate_uid(entropy_srcs=[*parts, kind])


def _review_digest(review: Review | None) -> str:
    if review is None:
        return "no review"
    return repr((sorted(review.verdicts.items()), sorted(review.corrected_labels)))


def _kind(ds: Dataset) -> str:
    return {
        hd.pm.ParametricMap: "parametric-map",
        hd.seg.Segmentation: "segmentation",
        hd.sr.ComprehensiveSR: "structured-report",
        hd.sc.SCImage: "secondary-capture",
    }.get(type(ds), "object")
