# lm-eval resolves `!function utils.x` against this folder; the code lives in harness.lmeval.tasks.
from harness.lmeval.tasks import (  # noqa: F401
    doc_to_text_cot,
    doc_to_text_gen,
    doc_to_text_mc,
    load_medqa,
    process_results_gen,
)
