from harness.terms import diagnosis_aliases, expand, giveaways, match_concepts, normalize, phrase_in, stem


def test_normalize_folds_case_apostrophes_and_hyphens():
    assert normalize("Parkinson’s Stevens-Johnson") == "parkinson stevens johnson"
    assert phrase_in("narrowing of the aorta", "Is there a narrowing of his aorta?")


def test_longest_phrase_wins_and_panels_expand_to_parts():
    found = match_concepts("chest x-ray", ("test", "exam", "region"))
    assert "cxr" in found.concept_ids and "xray" in found.concept_ids and not found.leftover
    assert {"wbc", "hemoglobin", "platelets"} <= expand(match_concepts("CBC", ("test",)).concept_ids)
    assert "emg" in match_concepts("EMG", ("test",)).concept_ids


def test_lay_wording_maps_to_findings():
    assert "diplopia" in match_concepts("Are you seeing two of everything?", ("finding", "topic")).concept_ids
    assert "medications" in match_concepts("She takes lisinopril daily", ("finding", "topic")).concept_ids


def test_stem_joins_word_forms():
    assert stem("refuse") == stem("refusal") == stem("refuses")


def test_aliases_and_giveaways_of_a_curated_diagnosis():
    assert "CLL" in diagnosis_aliases("Chronic lymphocytic leukemia")
    assert "leukemia" in giveaways("Chronic lymphocytic leukemia")
    assert "leukemia" not in diagnosis_aliases("Chronic lymphocytic leukemia")  # a giveaway is not a correct answer


def test_everyday_words_of_a_diagnosis_name_are_not_giveaways():
    assert "defiant" not in [w.lower() for w in giveaways("Oppositional Defiant Disorder")]
    assert "rupture" not in [w.lower() for w in giveaways("Uterine rupture")]
    assert "Myasthenia" in giveaways("Myasthenia gravis") or "myasthenia" in giveaways("Myasthenia gravis")
