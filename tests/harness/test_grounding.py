from harness.cases import Fact
from harness.grounding import check_reply, entailed, lookup, retrieve_facts

TESTS = {
    "Complete Blood Count / WBC": "12,000/mm3",
    "Complete Blood Count / Hemoglobin": "14 g/dL",
    "Urinalysis / WBC": "12-16/hpf",
    "Blood Tests / Acetylcholine Receptor Antibodies": "Present (elevated)",
    "Electromyography": "Decreased muscle response with repetitive stimulation",
    "Imaging / Chest CT": "Normal, no thymoma",
}
EXAM = {
    "Vital Signs / Temperature": "36.6",
    "Neurological Examination / Cranial Nerves": "Ptosis of the right eyelid",
    "Abdominal Examination / Palpation": "Soft",
}


def test_panel_request_returns_its_parts_not_another_panels():
    assert set(lookup(TESTS, "CBC", "test")) == {"Complete Blood Count / WBC", "Complete Blood Count / Hemoglobin"}
    assert set(lookup(TESTS, "urine analysis", "test")) == {"Urinalysis / WBC"}


def test_abbreviations_and_other_names_find_the_recorded_result():
    assert set(lookup(TESTS, "EMG", "test")) == {"Electromyography"}
    assert set(lookup(TESTS, "nerve conduction with repetitive stimulation", "test")) == {"Electromyography"}
    assert set(lookup(TESTS, "anti-AChR antibodies", "test")) == {"Blood Tests / Acetylcholine Receptor Antibodies"}
    assert set(lookup(TESTS, "CT of the chest", "test")) == {"Imaging / Chest CT"}


def test_unrecorded_request_matches_nothing():
    assert lookup(TESTS, "serum ferritin", "test") == {} and lookup(TESTS, "blood cultures", "test") == {}
    assert lookup(EXAM, "knee", "exam") == {}


def test_exam_systems():
    assert set(lookup(EXAM, "eyes", "exam")) == {"Neurological Examination / Cranial Nerves"}
    assert lookup(EXAM, "physical examination", "exam") == EXAM
    assert set(lookup(EXAM, "vitals", "exam")) == {"Vital Signs / Temperature"}


LABS = {
    "Coagulation / Prothrombin Time": "13 s",
    "Coagulation / aPTT": "31 s",
    "Coagulation / Bleeding Time": "Prolonged",
    "Iron Studies / Ferritin": "15 ng/mL",
    "Iron Studies / Serum Iron": "40 ug/dL",
    "Metabolic Panel / Sodium": "139 mEq/L",
    "Metabolic Panel / Glucose": "92 mg/dL",
    "Uric Acid Level": "9.1 mg/dL",
    "Genetic Testing": "JAK2 V617F detected",
}


def test_a_single_analyte_returns_only_itself_and_a_panel_all_it_holds():
    assert set(lookup(LABS, "aPTT", "test")) == {"Coagulation / aPTT"}
    assert set(lookup(LABS, "ferritin", "test")) == {"Iron Studies / Ferritin"}
    assert set(lookup(LABS, "coags", "test")) == {
        "Coagulation / Prothrombin Time",
        "Coagulation / aPTT",
        "Coagulation / Bleeding Time",
    }
    assert set(lookup(LABS, "BMP", "test")) == {"Metabolic Panel / Sodium", "Metabolic Panel / Glucose"}  # a BMP includes glucose
    assert set(lookup(LABS, "serum urate", "test")) == {"Uric Acid Level"}
    assert set(lookup(LABS, "JAK2 mutation", "test")) == {"Genetic Testing"}
    assert set(lookup({"Mental Status Exam / Mood": "Low", "Abdomen": "Soft"}, "MSE", "exam")) == {"Mental Status Exam / Mood"}
    assert set(lookup({"Oral Examination / Gums": "Bleeding", "Abdomen": "Soft"}, "look in his mouth", "exam")) == {
        "Oral Examination / Gums"
    }


def test_a_request_is_answered_by_a_result_of_its_own_kind_and_common_names_find_it():
    assert lookup({"Imaging / Chest X-ray": "Clear lungs"}, "CT chest", "test") == {}  # the chest alone is no CT
    record = {
        "Blood Work / Reticulocytes": "0.5%",
        "Polysomnography": "Central apneas",
        "Serum Electrophoresis": "IgM spike",
        "Hematuria": "Present",
    }
    assert set(lookup(record, "Retic count", "test")) == {"Blood Work / Reticulocytes"}
    assert set(lookup(record, "overnight sleep study (PSG)", "test")) == {"Polysomnography"}
    assert set(lookup(record, "SPEP", "test")) == {"Serum Electrophoresis"}
    assert set(lookup(record, "urinalysis", "test")) == {"Hematuria"}
    exam = {"Eyes / Fundoscopy": "Normal discs", "Eyes / Visual Acuity": "6/6", "Neurological Examination / Gait": "Broad"}
    assert set(lookup(exam, "fundoscopy", "exam")) == {"Eyes / Fundoscopy"}
    assert set(lookup(exam, "check visual acuity", "exam")) == {"Eyes / Visual Acuity"}
    assert set(lookup(exam, "watch him walk", "exam")) == {"Neurological Examination / Gait"}


FACTS = [
    Fact("f1", "Double vision", "symptoms", True),
    Fact("f2", "Improvement of symptoms after rest", "symptoms", True),
    Fact("f3", "Non-smoker, drinks wine occasionally. Works as a graphic designer.", "social history"),
    Fact("f4", "Patient denies any chest pain or palpitations.", "review of systems"),
]


def test_retrieval_by_meaning_and_nothing_for_unrecorded():
    assert [f.id for f in retrieve_facts("Are you seeing two of everything?", FACTS)][:1] == ["f1"]
    assert "f3" in [f.id for f in retrieve_facts("What do you do for a living?", FACTS)]
    assert retrieve_facts("Have you noticed a rash?", FACTS) == []


def test_open_question_retrieves_the_presenting_complaint():
    for question in ("What brings you in today?", "What's been going on?", "What seems to be the problem?"):
        offered = [f.id for f in retrieve_facts(question, FACTS, complaint="Double vision")]
        assert offered[:1] == ["f1"], question
    assert "f1" not in [f.id for f in retrieve_facts("Do you smoke?", FACTS, complaint="Double vision")]


def test_entailment_counts_paraphrases():
    assert [f.id for f in entailed(["It gets better if I rest."], FACTS)] == ["f2"]
    assert entailed(["I have a rash on my arm."], FACTS) == []


def test_reply_labels():
    record = [f.text for f in FACTS]
    allowed = [FACTS[0].text]
    assert check_reply("Yes, I've been seeing double.", allowed, record).label == "supported"
    assert check_reply("No, my vision is perfectly fine.", allowed, record).label == "false_denial"
    assert check_reply("I haven't noticed that.", [], record).label == "not_noticed"
    assert check_reply("I'm worried, doctor. Is it serious?", [], record).label == "small_talk"
    assert check_reply("I had a stroke last year.", allowed, record).label == "hallucination"
    assert check_reply("I smoke twenty cigarettes a day.", [FACTS[2].text], record).label == "hallucination"


def test_a_short_fact_inside_a_chosen_long_one_comes_along_only_when_it_answers_the_question():
    facts = [
        Fact("f1", "Denies fever and vomiting. Reports bloody loose bowel movements.", "review of systems"),
        Fact("f2", "Bloody loose bowel movements", "symptoms"),
        Fact("f3", "No vomiting", "symptoms"),
    ]
    offered = {f.id for f in retrieve_facts("Have you been throwing up?", facts)}
    assert offered == {"f1", "f3"}  # the bowel movements restate part of f1, but not the part asked about
    offered = {f.id for f in retrieve_facts("Any blood in your stools?", facts)}
    assert {"f1", "f2"} <= offered


def test_a_family_history_question_is_answered_only_by_facts_about_the_family():
    facts = [
        Fact("f1", "Progressive memory problems and personality change", "symptoms"),
        Fact("f2", "Retired teacher", "social history"),
        Fact("f3", "Father died of a stroke at 70", "family history"),
    ]
    offered = [f.id for f in retrieve_facts("Does anyone in the family have dementia or memory problems?", facts)]
    assert offered == ["f3"]  # the patient's own memory problems do not answer it
    facts = [Fact("f1", "Easy bruising for three weeks", "symptoms"), Fact("f2", "Anemia on a blood test last year", "past")]
    assert retrieve_facts("Any allergies to medicines?", facts) == []  # nothing recorded about allergies


def test_skin_and_knee_findings_filed_under_generic_keys_are_found_by_what_they_describe():
    """MediQ files exam findings as "finding N": a skin request must find them by their lesions, a knee request by
    the patella."""
    record = {
        "finding 9": "Examination reveals lichenified scaling plaques on the trunk.",
        "finding 10": "Examination reveals several hypopigmented macules on her legs.",
        "finding 11": "On examination, grouped vesicles and papules were observed.",
        "finding 12": "Heart sounds normal, no murmurs.",
    }
    skin = {"finding 9", "finding 10", "finding 11"}
    assert set(lookup(record, "skin", "exam")) == skin and set(lookup(record, "look at the skin lesions", "exam")) == skin
    knee = {"Examination": "A soft-tissue depression proximal to the patella on both sides.", "finding 2": "Lungs clear."}
    assert set(lookup(knee, "knees", "exam")) == {"Examination"}


def test_a_named_manoeuvre_returns_only_that_manoeuvre_where_the_record_files_them_apart():
    """'Listen to the chest' is auscultation: not the chest's inspection or percussion; nothing when auscultation is
    not recorded; an entry that names no manoeuvre still answers."""
    split = {
        "Respiratory Examination / Inspection": "Symmetric expansion",
        "Respiratory Examination / Auscultation": "Bibasilar crackles",
        "Respiratory Examination / Percussion": "Dull at the bases",
    }
    assert set(lookup(split, "listen to the chest", "exam")) == {"Respiratory Examination / Auscultation"}
    assert set(lookup(split, "chest", "exam")) == set(split)
    no_auscultation = {k: v for k, v in split.items() if "Auscultation" not in k}
    assert lookup(no_auscultation, "listen to the chest", "exam") == {}
    assert set(
        lookup(
            {"Abdominal Examination / Palpation": "Tender RLQ", "Abdominal Examination / Inspection": "Flat"},
            "feel the belly",
            "exam",
        )
    ) == {"Abdominal Examination / Palpation"}
    whole = {"Respiratory Examination": "Crackles at both bases"}
    assert lookup(whole, "listen to the chest", "exam") == whole


def test_a_request_naming_its_specimen_is_not_answered_from_another_specimen():
    record = {"Urinalysis / Na": "40 mEq/L", "Joint Aspiration / Analysis / WBC": "52,000/uL", "CSF / Protein": "90 mg/dL"}
    assert lookup(record, "serum sodium", "test") == {}
    assert lookup(record, "blood white cell count", "test") == {}
    assert set(lookup(record, "urine sodium", "test")) == {"Urinalysis / Na"}
    assert set(lookup(record, "synovial fluid white count", "test")) == {"Joint Aspiration / Analysis / WBC"}
    assert set(lookup({**record, "Chemistry / Sodium": "138 mEq/L"}, "serum sodium", "test")) == {"Chemistry / Sodium"}


def test_serology_filed_without_the_withheld_diagnosis_name_and_other_names_of_tests_are_found():
    """Case scrubbing turns "Hepatitis B Surface Antigen" into "[withheld] Surface Antigen": a hepatitis serology
    request must still find it."""
    record = {
        "Infectious Disease Testing / [withheld] Surface Antigen": "Positive",
        "Infectious Disease Testing / [withheld] Core IgG Antibody": "Positive",
        "Audiology Report One Week Ago": "Sensorineural loss",
        "Complete Blood Count / WBC": "9,000/mm3",
    }
    assert set(lookup(record, "viral hepatitis serology", "test")) == {
        "Infectious Disease Testing / [withheld] Surface Antigen",
        "Infectious Disease Testing / [withheld] Core IgG Antibody",
    }
    assert set(lookup(record, "audiogram", "test")) == {"Audiology Report One Week Ago"}
    assert set(lookup({"Hand Examination / Range of Motion": "Limited"}, "range of movement of the finger", "exam")) == {
        "Hand Examination / Range of Motion"
    }
