"""What DICOM results cost: time to score a study on a PACS and store its results back, and their sizes.

Run: python benchmarks/dicom_results.py [--repeats 5]
Starts Debian's Orthanc with its DICOMweb plugin (as the tests do), puts two single-image studies on it
(pydicom-data's 2k chest CR, JPEG 2000, 1955 x 1841; the synthetic nodule sample as a 512 x 512 DICOM) and,
interleaved in each repeat, times per study: scoring alone (the image already in memory: decode, model,
attention; the baseline), building the four results, and the whole round trip a PACS user waits for
(WADO-RS retrieve, score, build, STOW-RS store). Prints medians, the round trip's ratio to scoring alone,
and each object's size. The chest CR is unlike the training data, so its results are built as when the
reader chose to see the output anyway.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from medattn import Predictor, load_scan
from medattn.pacs.dicomweb import Pacs
from medattn.pacs.outputs import build_results, dicom_bytes, scored_image, source_dataset
from tests.conftest import PYDICOM_DATA_FILES, running_orthanc
from tests.pacs.conftest import dicom_of_sample

SECRET = b"benchmark"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    repeats = parser.parse_args().repeats
    predictor = Predictor.default()
    with tempfile.TemporaryDirectory() as scratch, running_orthanc(Path(scratch)) as orthanc:
        sources = {
            "chest CR 1955x1841 (J2K)": PYDICOM_DATA_FILES / "RG1_J2KR.dcm",
            "synthetic 512x512": Path(scratch) / "synthetic.dcm",
        }
        sources["synthetic 512x512"].write_bytes(dicom_of_sample("nodule-effusion"))
        for path in sources.values():
            orthanc.upload(path)
        pacs = Pacs(orthanc.dicomweb, orthanc.user, orthanc.password)
        study_of = {name: str(source_dataset(path.read_bytes()).StudyInstanceUID) for name, path in sources.items()}
        times = {name: {"score": [], "build": [], "round trip": []} for name in sources}
        sizes: dict[str, dict[str, int]] = {}
        for _ in range(repeats):
            for name, path in sources.items():
                content = path.read_bytes()
                started = time.perf_counter()
                scored = scored_image(predictor, load_scan(content), shown_anyway=True)
                times[name]["score"].append(time.perf_counter() - started)
                started = time.perf_counter()
                results = build_results(source_dataset(content), scored)
                files = results.files()
                times[name]["build"].append(time.perf_counter() - started)
                sizes[name] = {file_name.split("-", 1)[1][:-4]: len(data) for file_name, data in files.items()}

                started = time.perf_counter()
                [image] = list(pacs.images(study_of[name]))
                fetched = dicom_bytes(image)
                scored = scored_image(predictor, load_scan(fetched), shown_anyway=True)
                pacs.store(build_results(source_dataset(fetched), scored).datasets)
                times[name]["round trip"].append(time.perf_counter() - started)

    print(f"Medians over {repeats} interleaved repeats, seconds (one image per study)\n")
    print(f"{'study':<26}{'score alone':>12}{'build 4 objects':>17}{'retrieve+score+build+store':>28}{'ratio':>8}")
    for name, measured in times.items():
        score, build, trip = (statistics.median(measured[key]) for key in ("score", "build", "round trip"))
        print(f"{name:<26}{score:>12.3f}{build:>17.3f}{trip:>28.3f}{trip / score:>7.1f}x")
    print("\nObject sizes, KiB")
    kinds = list(next(iter(sizes.values())))
    print(f"{'study':<26}" + "".join(f"{kind:>20}" for kind in kinds))
    for name, measured in sizes.items():
        print(f"{name:<26}" + "".join(f"{measured[kind] / 1024:>20.0f}" for kind in kinds))


if __name__ == "__main__":
    main()
