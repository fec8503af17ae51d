"""A separate writer process for the store's concurrency and crash tests.

python -m tests.review.store_writer URL COUNT TAG: saves COUNT reviews and prints each one's id once committed.
"""

import sys

from medattn.review.store import Review, ReviewStore


def review(tag: str, index: int) -> Review:
    return Review(
        reviewer=f"writer {tag}",
        scan_key=f"{tag}-{index:05d}",
        model_name="medattn-test",
        model_version="1",
        probabilities={"nodule": index / 1000, "effusion": 0.5},
        verdicts={"nodule": "agree", "effusion": "disagree"},
        corrected_labels=["nodule"],
        note=f"note {index} " + "x" * 200,
        submission_id=f"{tag}-{index}",
    )


if __name__ == "__main__":
    url, count, tag = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    store = ReviewStore(url)
    for index in range(count):
        review_id = store.save(review(tag, index))
        print(review_id, flush=True)
    store.close()
