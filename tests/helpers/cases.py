"""A small hand-made case, a scripted patient and a rubric-generator reply, for unit tests."""

import json
import re

from harness.cases import Case, Fact
from harness.rubric_generator import SECTIONS


def make_case() -> Case:
    return Case(
        case_id="t-1",
        source="test",
        presenting_complaint="Double vision",
        demographics="35-year-old woman",
        history=[
            Fact("f1", "Double vision for one month", "symptoms", True),
            Fact("f2", "Difficulty climbing stairs", "symptoms", True),
            Fact("f3", "Non-smoker, drinks wine occasionally", "social history", False),
        ],
        exam={"Neurological / Cranial nerves": "Ptosis worse with upward gaze"},
        tests={"Electromyography": "Decreased muscle response with repetitive stimulation", "TSH": "Normal"},
        diagnosis="Myasthenia gravis (MG)",
    )


def echo_facts(messages):
    """A scripted patient model: says exactly the facts the simulator let it see."""
    listed = re.findall(r"^- (.+)$", messages[0]["content"], re.M)
    return " ".join(f.rstrip(".") + "." for f in listed if not f.startswith("("))


def sections(**override):
    body = {name: [{"criterion": f"does the {name} thing", "points": -5 if name == "safety" else 3}] for name in SECTIONS}
    body.update(override)
    return json.dumps(body)
