"""QIDO-RS searches (PS3.18 §10.6, matching per PS3.4 C.2.2.2) run directly on the index.

Every test runs on SQLite and on PostgreSQL (the ``index_url`` fixture) against the same small
archive, inserted row by row: the two databases must give the same answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
from pacs_api.errors import BadRequest
from pacs_api.index.matching import COLUMNS
from pacs_api.index.search import QidoQuery, QidoResult, run_search
from pacs_common.attributes import (
    INSTANCE_RETURN,
    SERIES_RETURN,
    STUDY_RETURN,
    Attribute,
    Level,
    attribute,
    level_of,
)
from pacs_common.dicomjson import tag_key
from sqlalchemy import event
from sqlmodel import Session

from tests.support.qido_archive import (
    BASE,
    CR,
    CT,
    SR,
    STUDY_ORDER,
    Archive,
    build_archive,
    first,
    values_of,
)


@pytest.fixture
def archive(index_url: str) -> Iterator[Archive]:
    """The QIDO test archive (tests/support/qido_archive.py) on SQLite and on PostgreSQL."""
    built = build_archive(index_url)
    yield built
    built.engine.dispose()


def search(
    archive: Archive,
    level: Level = Level.STUDY,
    keys: Mapping[str, str] | None = None,
    *,
    include: Sequence[str] = (),
    **options: Any,
) -> QidoResult:
    query = QidoQuery(
        level=level,
        base_url=BASE,
        limit=options.pop("limit", 100),
        matching=[(attribute(k), v) for k, v in (keys or {}).items()],
        includefields=[attribute(k) for k in include],
        **options,
    )
    with Session(archive.engine) as session:
        return run_search(session, query)


def keys_of(attrs: Sequence[Attribute]) -> set[str]:
    return {a.key for a in attrs}


def test_column_table_agrees_with_attribute_levels() -> None:
    """Each indexed attribute lives in the table of its level (PS3.4 C.3), so a key is
    matched on the entity it belongs to."""
    tables = {
        Level.STUDY: {"Patient", "Study"},
        Level.SERIES: {"Series"},
        Level.IMAGE: {"Instance"},
    }
    for keyword, entry in COLUMNS.items():
        for column in (entry.value, entry.match):
            if column is not None:
                assert str(column).split(".")[0] in tables[level_of(attribute(keyword))], keyword


# -- universal and single value matching ------------------------------------------------------


def test_studies_without_keys_all_newest_first_undated_last(archive: Archive) -> None:
    """No key is universal matching on everything (PS3.4 C.2.2.2.3); order is ours, stable."""
    result = search(archive)
    assert archive.study_names(result) == STUDY_ORDER
    assert not result.truncated and not result.warnings


def test_patient_id_single_value_is_exact_and_case_sensitive(archive: Archive) -> None:
    """Single value matching is exact and case-sensitive except for PN (PS3.4 C.2.2.2.1)."""
    assert archive.study_names(search(archive, keys={"PatientID": "PAT001"})) == ["brain", "chest"]
    assert search(archive, keys={"PatientID": "pat001"}).datasets == []
    assert search(archive, keys={"PatientID": "PAT00"}).datasets == []


def test_patient_name_single_value_is_case_insensitive(archive: Archive) -> None:
    """PN matching may be case-insensitive; ours is (PS3.4 C.2.2.2.1)."""
    result = search(archive, keys={"PatientName": "doe^john"})
    assert archive.study_names(result) == ["brain", "chest"]
    assert values_of(result.datasets[0], "PatientName") == [{"Alphabetic": "Doe^John"}]


def test_patient_name_wildcard_is_case_insensitive(archive: Archive) -> None:
    """``*`` matches any run of characters in a PN, case-insensitively (PS3.4 C.2.2.2.4)."""
    names = archive.study_names(search(archive, keys={"PatientName": "doe*"}))
    assert names == ["brain", "chest", "spine"]


def test_patient_name_question_mark_matches_one_character(archive: Archive) -> None:
    """``?`` matches exactly one character (PS3.4 C.2.2.2.4)."""
    assert archive.study_names(search(archive, keys={"PatientName": "D?E^J*"})) == [
        "brain",
        "chest",
        "spine",
    ]
    assert search(archive, keys={"PatientName": "D?^J*"}).datasets == []


def test_patient_name_non_ascii_is_case_insensitive(archive: Archive) -> None:
    """Case-insensitive PN matching also folds non-ASCII letters (PS3.4 C.2.2.2.1)."""
    assert archive.study_names(search(archive, keys={"PatientName": "müller^jürgen"})) == [
        "undated"
    ]


def test_referring_physician_name_wildcard_is_case_insensitive(archive: Archive) -> None:
    """Referring Physician's Name is a PN key of table 10.6.1-5 (PS3.18 §10.6.1)."""
    names = archive.study_names(search(archive, keys={"ReferringPhysicianName": "SMITH^*"}))
    assert names == ["brain", "chest"]


def test_wildcard_is_case_sensitive_outside_person_names(archive: Archive) -> None:
    """Wild card matching is case-sensitive for non-PN VRs (PS3.4 C.2.2.2.4), SQLite too."""
    assert search(archive, keys={"AccessionNumber": "acc*"}).datasets == []
    assert len(search(archive, keys={"AccessionNumber": "ACC*"}).datasets) == 7


def test_wildcard_escapes_sql_like_metacharacters(archive: Archive) -> None:
    """``_`` and ``%`` in a key are literal characters, not SQL wild cards (PS3.4 C.2.2.2.4)."""
    assert archive.study_names(search(archive, keys={"PatientID": "A_*"})) == ["head_a"]
    assert archive.study_names(search(archive, keys={"StudyDescription": "CT_H?AD"})) == ["head_a"]
    assert search(archive, keys={"AccessionNumber": "ACC%*"}).datasets == []
    assert search(archive, keys={"PatientID": "A[_]*"}).datasets == []


def test_empty_value_is_universal_and_returned(archive: Archive) -> None:
    """A zero-length key matches everything and is returned (PS3.4 C.2.2.2.3)."""
    result = search(archive, keys={"StudyDescription": ""})
    assert archive.study_names(result) == STUDY_ORDER
    assert [first(ds, "StudyDescription") for ds in result.datasets][:2] == ["MR BRAIN", "MR KNEE"]


def test_single_asterisk_is_universal_for_any_vr(archive: Archive) -> None:
    """A lone ``*`` is universal matching, even for UI and DA keys (PS3.4 C.2.2.2.4)."""
    result = search(archive, keys={"StudyInstanceUID": "*", "StudyDate": "*"})
    assert archive.study_names(result) == STUDY_ORDER


# -- lists -----------------------------------------------------------------------------------


def test_study_uid_list_accepts_comma_and_backslash(archive: Archive) -> None:
    """List of UID matching: backslash (PS3.4 C.2.2.2.2) or comma (PS3.18 §8.3.4.1)."""
    chest, knee, spine = (archive.studies[n] for n in ("chest", "knee", "spine"))
    assert archive.study_names(search(archive, keys={"StudyInstanceUID": f"{chest},{knee}"})) == [
        "knee",
        "chest",
    ]
    both = search(archive, keys={"StudyInstanceUID": f"{chest}\\{spine}"})
    assert archive.study_names(both) == ["chest", "spine"]


def test_study_uid_invalid_in_list_400(archive: Archive) -> None:
    """Every UID of a list must be a valid UID (PS3.5 §9.1); a bad value is a 400 (PS3.18
    §8.3)."""
    with pytest.raises(BadRequest, match=r"StudyInstanceUID=.*'1\.02\.3' is not a valid UID"):
        search(archive, keys={"StudyInstanceUID": f"{archive.studies['chest']},1.02.3"})
    with pytest.raises(BadRequest, match="not a valid UID"):
        search(archive, keys={"StudyInstanceUID": "1.2.*"})


def test_value_list_matches_any_value(archive: Archive) -> None:
    """Backslash-separated values match when any value matches (PS3.4 C.2.2.2.8)."""
    result = search(archive, keys={"AccessionNumber": "ACC001\\ACC003\\ACC_0*"})
    assert archive.study_names(result) == ["knee", "chest", "spine"]


# -- date and time ranges --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("20240220", ["brain", "knee"]),
        ("20231231-20240115", ["chest", "spine"]),
        ("-20220102", ["head_b", "head_a"]),
        ("20240115-", ["brain", "knee", "chest"]),
        ("20220101\\20231231", ["spine", "head_a"]),
    ],
)
def test_study_date_single_range_and_list(
    archive: Archive, value: str, expected: list[str]
) -> None:
    """DA ranges ``lo-hi``, ``-hi``, ``lo-`` and lists (PS3.4 C.2.2.2.5, C.2.2.2.8); an empty
    date never matches a range."""
    assert archive.study_names(search(archive, keys={"StudyDate": value})) == expected


@pytest.mark.parametrize(
    "value", ["2024", "2024-01-01", "20240230", "20240101-20231231", "-", "2024010a", "1-2-3"]
)
def test_study_date_bad_range_400(archive: Archive, value: str) -> None:
    """A malformed date or range is a 400 naming the key and value (PS3.18 §8.3,
    PS3.5 table 6.2-1)."""
    with pytest.raises(BadRequest, match=r"^StudyDate="):
        search(archive, keys={"StudyDate": value})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("141500", ["brain"]),  # 141500.123 lies within the second 14:15:00
        ("14", ["brain"]),
        ("0830-0900", ["knee", "chest"]),  # "0900" stored with minute precision
        ("-0830", ["chest"]),
        ("1200-", ["brain", "spine", "head_b", "head_a"]),
        ("141500.2-", ["spine"]),
        ("141500.1-141500.123", ["brain"]),
    ],
)
def test_study_time_range_across_precisions(
    archive: Archive, value: str, expected: list[str]
) -> None:
    """TM ranges compare on normalized times, whatever the stored precision (PS3.4
    C.2.2.2.5)."""
    assert archive.study_names(search(archive, keys={"StudyTime": value})) == expected


@pytest.mark.parametrize("value", ["25", "1261", "12:00", "120000.1234567", "1300-1200", "1"])
def test_study_time_bad_value_400(archive: Archive, value: str) -> None:
    """A malformed time or a reversed range is a 400 (PS3.18 §8.3, PS3.5 table 6.2-1)."""
    with pytest.raises(BadRequest, match=r"^StudyTime="):
        search(archive, keys={"StudyTime": value})


def test_study_date_and_time_ranges_match_independently(archive: Archive) -> None:
    """Date and time ranges apply each on its own, not as one date-time range (PS3.4
    C.2.2.2.5 needs extended negotiation): 20240115-20240220 with 1000-2359 excludes the
    08:30 study on the first day and keeps the 14:15 one on the last."""
    keys = {"StudyDate": "20240115-20240220", "StudyTime": "1000-2359"}
    assert archive.study_names(search(archive, keys=keys)) == ["brain"]


# -- integers, modalities --------------------------------------------------------------------


def test_modalities_in_study_matches_any_series(archive: Archive) -> None:
    """ModalitiesInStudy matches a study with any series of that modality, and returns all
    of the study's modalities (PS3.4 C.3.4, PS3.18 table 10.6.1-5)."""
    result = search(archive, keys={"ModalitiesInStudy": "SR\\MR"})
    assert archive.study_names(result) == ["brain", "knee", "chest", "spine"]
    assert values_of(result.datasets[0], "ModalitiesInStudy") == ["CT", "MR"]
    assert values_of(result.datasets[2], "ModalitiesInStudy") == ["CT", "SR"]


def test_modalities_in_study_wildcard(archive: Archive) -> None:
    """ModalitiesInStudy is CS, so it takes wild cards (PS3.4 C.2.2.2.4)."""
    assert archive.study_names(search(archive, keys={"ModalitiesInStudy": "C?"})) == [
        "brain",
        "chest",
        "head_b",
        "head_a",
        "undated",
    ]


def test_series_number_integer_match_and_list(archive: Archive) -> None:
    """IS keys match as integers, ``+2`` and ``02`` being 2 (PS3.4 C.2.2.2.1, CP-2305)."""
    result = search(archive, Level.SERIES, {"SeriesNumber": "+2\\05"})
    assert sorted(first(ds, "SeriesNumber") for ds in result.datasets) == [2, 2, 5]


def test_series_number_not_an_integer_400(archive: Archive) -> None:
    """An IS key that is not an integer is a 400 (PS3.18 §8.3)."""
    with pytest.raises(BadRequest, match=r"SeriesNumber='two'"):
        search(archive, Level.SERIES, {"SeriesNumber": "two"})


# -- returned attributes ---------------------------------------------------------------------


def test_study_answer_has_every_return_attribute(archive: Archive) -> None:
    """Each study answer holds table 10.6.3-3 (PS3.18 §10.6.3.3), empty ones present without
    Value (PS3.18 F.2.5), RetrieveURL and InstanceAvailability filled in."""
    result = search(archive, keys={"AccessionNumber": "ACC005"})
    (dataset,) = result.datasets
    assert keys_of(STUDY_RETURN) <= set(dataset)
    assert dataset[tag_key("StudyDate")] == {"vr": "DA"}
    assert dataset[tag_key("ReferringPhysicianName")] == {"vr": "PN"}
    assert first(dataset, "RetrieveURL") == f"{BASE}/studies/{archive.studies['undated']}"
    assert first(dataset, "InstanceAvailability") == "ONLINE"
    assert first(dataset, "SpecificCharacterSet") == "ISO_IR 192"
    assert list(dataset) == sorted(dataset)


def test_study_counts_computed_per_study(archive: Archive) -> None:
    """NumberOfStudyRelatedSeries / Instances are computed (PS3.4 C.3.4)."""
    result = search(archive, keys={"StudyID": "chest\\brain"})
    counts = [
        (first(ds, "NumberOfStudyRelatedSeries"), first(ds, "NumberOfStudyRelatedInstances"))
        for ds in result.datasets
    ]
    assert counts == [(2, 3), (3, 6)]


def test_includefield_keyword_from_representative_metadata(archive: Archive) -> None:
    """includefield names attributes beyond the defaults; those not in the index come from
    the stored metadata (PS3.18 §8.3.4.3)."""
    result = search(archive, keys={"StudyID": "chest"}, include=["PatientAge", "PatientSex"])
    (dataset,) = result.datasets
    assert first(dataset, "PatientAge") == "045Y"
    assert first(dataset, "PatientSex") == "M"


def test_includefield_tag_form_and_missing_value_present_empty(archive: Archive) -> None:
    """includefield accepts tags; an attribute the data lacks is returned empty (PS3.18
    §8.3.4.3, F.2.5)."""
    result = search(archive, keys={"StudyID": "chest"}, include=["00101010", "00101020"])
    (dataset,) = result.datasets
    assert first(dataset, "PatientAge") == "045Y"
    assert dataset["00101020"] == {"vr": "DS"}


def test_includefield_all_at_study_level_only_study_attributes(archive: Archive) -> None:
    """includefield=all returns what the study level holds, nothing of series or instances
    (PS3.18 §8.3.4.3, PS3.4 C.3)."""
    (dataset,) = search(archive, keys={"StudyID": "chest"}, include_all=True).datasets
    assert first(dataset, "PatientAge") == "045Y"
    assert first(dataset, "StudyDescription") == "CT CHEST"
    assert first(dataset, "IssuerOfPatientID") is None
    for absent in ("ProtocolName", "Modality", "ImageType", "SOPInstanceUID", "PixelData"):
        assert tag_key(absent) not in dataset
    assert "00091001" not in dataset


def test_includefield_below_level_ignored_with_warning(archive: Archive) -> None:
    """An instance attribute asked at the study level is not returned, with a warning
    (PS3.18 §8.3: unsupported parameters are ignored, a warning may say so)."""
    result = search(archive, keys={"StudyID": "chest"}, include=["SOPInstanceUID"])
    assert tag_key("SOPInstanceUID") not in result.datasets[0]
    assert result.warnings and "SOPInstanceUID" in result.warnings[0]


def test_unmatchable_attribute_ignored_with_warning(archive: Archive) -> None:
    """A key the index cannot match on is ignored with a warning naming it (PS3.18 §8.3),
    but is still returned as a return key (PS3.4 C.2.2.2.3)."""
    result = search(archive, keys={"PatientAge": "099Y"})
    assert archive.study_names(result) == STUDY_ORDER
    assert len(result.warnings) == 1 and "PatientAge" in result.warnings[0]
    assert first(result.datasets[0], "PatientAge") == "045Y"


def test_fuzzymatching_person_name_words_in_any_order(archive: Archive) -> None:
    """fuzzymatching=true (PS3.18 §8.3.4.2; rules left to the implementation by PS3.4
    C.2.2.2.1.1): each word of the value begins a name component or a word of one, in any
    order and case; literal matching finds nothing for the same value."""
    fuzzy = search(archive, keys={"PatientName": "john doe"}, fuzzymatching=True)
    assert archive.study_names(fuzzy) == ["brain", "chest"]
    assert fuzzy.warnings == []
    assert search(archive, keys={"PatientName": "john doe"}).datasets == []
    berg = search(archive, keys={"PatientName": "berg ann"}, fuzzymatching=True)
    assert {first(ds, "PatientID") for ds in berg.datasets} == {"PAT003"}
    prefix = search(archive, keys={"PatientName": "do"}, fuzzymatching=True)
    assert {first(ds, "PatientID") for ds in prefix.datasets} == {"PAT001", "PAT002"}
    none = search(archive, keys={"PatientName": "ohn"}, fuzzymatching=True)
    assert none.datasets == []  # a word must begin a component, not sit inside one


# -- paging ----------------------------------------------------------------------------------


def test_limit_and_offset_page_through_in_order(archive: Archive) -> None:
    """limit/offset page the stable order; truncated says more matches exist (PS3.18
    §8.3.4.4)."""
    pages = [search(archive, limit=3, offset=offset) for offset in (0, 3, 6)]
    assert [archive.study_names(p) for p in pages] == [
        STUDY_ORDER[:3],
        STUDY_ORDER[3:6],
        STUDY_ORDER[6:],
    ]
    assert [p.truncated for p in pages] == [True, True, False]


def test_limit_equal_to_matches_is_not_truncated(archive: Archive) -> None:
    """Exactly *limit* matches is a complete answer (PS3.18 §8.3.4.4)."""
    assert not search(archive, limit=7).truncated
    assert search(archive, limit=6).truncated


def test_offset_past_the_end_is_empty(archive: Archive) -> None:
    """An offset beyond the matches gives an empty page (PS3.18 §8.3.4.4)."""
    result = search(archive, offset=50)
    assert result.datasets == [] and not result.truncated


def test_page_costs_the_same_queries_whatever_its_size(archive: Archive) -> None:
    """Computed attributes and metadata take a fixed number of queries per page, never one
    per row (PS3.18 §10.6.3.3 attributes over one GROUP BY)."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(archive.engine, "before_cursor_execute", count)
    try:
        for level in (Level.STUDY, Level.SERIES, Level.IMAGE):
            sizes = []
            for limit in (1, 100):
                statements.clear()
                search(archive, level, limit=limit, include_all=True)
                sizes.append(len(statements))
            assert sizes[0] == sizes[1] <= 4, (level, statements)
    finally:
        event.remove(archive.engine, "before_cursor_execute", count)


# -- series ----------------------------------------------------------------------------------


def test_series_of_study_ordered_by_number_missing_last(archive: Archive) -> None:
    """Series of one study by Series Number, unnumbered last (PS3.18 §10.6.1, our order)."""
    result = search(archive, Level.SERIES, study_uid=archive.studies["chest"])
    assert [first(ds, "SeriesInstanceUID") for ds in result.datasets] == [
        archive.series[("chest", i)] for i in (0, 1, 2)
    ]
    assert [first(ds, "NumberOfSeriesRelatedInstances") for ds in result.datasets] == [3, 2, 1]
    dataset = result.datasets[0]
    assert keys_of(SERIES_RETURN) <= set(dataset)
    assert first(dataset, "StudyInstanceUID") == archive.studies["chest"]
    assert tag_key("PatientName") not in dataset  # the path fixes the study (§10.6.3.3)
    series = archive.series[("chest", 0)]
    assert first(dataset, "RetrieveURL") == (
        f"{BASE}/studies/{archive.studies['chest']}/series/{series}"
    )


def test_series_without_study_matches_study_attributes(archive: Archive) -> None:
    """``/series?PatientID=..`` matches study-level keys and returns the study's attributes
    (PS3.18 §10.6.1, §10.6.3.3)."""
    result = search(archive, Level.SERIES, {"PatientID": "PAT001", "Modality": "CT"})
    assert [first(ds, "SeriesDescription") for ds in result.datasets] == [
        "chest 0",
        "chest 1",
        "brain 1",
    ]
    assert keys_of(STUDY_RETURN) <= set(result.datasets[0])
    assert first(result.datasets[2], "NumberOfStudyRelatedSeries") == 2
    assert values_of(result.datasets[2], "ModalitiesInStudy") == ["CT", "MR"]


def test_series_in_study_ignores_study_keys_with_warning(archive: Archive) -> None:
    """In ``/studies/{uid}/series`` the path fixes the study: study keys are ignored with a
    warning (PS3.18 §10.6.1, §8.3)."""
    result = search(
        archive, Level.SERIES, {"PatientID": "nobody"}, study_uid=archive.studies["brain"]
    )
    assert len(result.datasets) == 2
    assert "PatientID" in result.warnings[0]


def test_series_in_study_empty_study_key_is_returned_without_warning(archive: Archive) -> None:
    """An empty key is a return key (PS3.4 C.2.2.2.3): in ``/studies/{uid}/series`` an empty
    PatientName asks for the patient's name, like includefield, and needs no warning."""
    result = search(archive, Level.SERIES, {"PatientName": ""}, study_uid=archive.studies["knee"])
    assert values_of(result.datasets[0], "PatientName") == [{"Alphabetic": "van der Berg^Anna"}]
    assert result.warnings == []


def test_series_of_unknown_study_is_empty(archive: Archive) -> None:
    """A study UID the archive does not hold matches nothing (PS3.18 §10.6.1)."""
    assert search(archive, Level.SERIES, study_uid="2.25.999999").datasets == []


def test_series_includefield_all_has_study_and_series_not_instance(archive: Archive) -> None:
    """includefield=all at the series level: study and series attributes only (PS3.4 C.3)."""
    result = search(archive, Level.SERIES, study_uid=archive.studies["brain"], include_all=True)
    dataset = result.datasets[0]
    assert first(dataset, "ProtocolName") == "brain 0 protocol"
    assert first(dataset, "PatientAge") == "045Y"
    assert tag_key("ImageType") not in dataset and tag_key("SOPInstanceUID") not in dataset


def test_scope_uid_invalid_400() -> None:
    """Path UIDs are validated (PS3.5 §9.1) before any query: a bad one is a 400."""
    with pytest.raises(BadRequest, match="Study Instance UID '1..2'"):
        QidoQuery(level=Level.SERIES, base_url=BASE, limit=10, study_uid="1..2")


# -- instances -------------------------------------------------------------------------------


def test_instances_of_series_by_instance_number(archive: Archive) -> None:
    """Instances of a series by Instance Number, whatever the insertion order; the table
    10.6.3-5 attributes each (PS3.18 §10.6.3.3)."""
    study, series = archive.studies["chest"], archive.series[("chest", 0)]
    result = search(archive, Level.IMAGE, study_uid=study, series_uid=series)
    assert [first(ds, "SOPInstanceUID") for ds in result.datasets] == archive.instances[
        ("chest", 0)
    ]
    dataset = result.datasets[0]
    assert keys_of(INSTANCE_RETURN) <= set(dataset)
    assert [first(dataset, k) for k in ("InstanceNumber", "Rows", "BitsAllocated")] == [1, 512, 16]
    assert dataset[tag_key("NumberOfFrames")] == {"vr": "IS"}
    assert tag_key("Modality") not in dataset  # the path fixes the series (§10.6.3.3)
    sop = archive.instances[("chest", 0)][0]
    assert first(dataset, "RetrieveURL") == (
        f"{BASE}/studies/{study}/series/{series}/instances/{sop}"
    )


def test_instances_of_study_match_series_attributes(archive: Archive) -> None:
    """``/studies/{uid}/instances`` matches and returns series-level keys (PS3.18 §10.6.3.3)."""
    result = search(archive, Level.IMAGE, {"Modality": "MR"}, study_uid=archive.studies["brain"])
    assert [first(ds, "SOPInstanceUID") for ds in result.datasets] == archive.instances[
        ("brain", 0)
    ]
    assert first(result.datasets[0], "NumberOfSeriesRelatedInstances") == 2
    assert tag_key("PatientID") not in result.datasets[0]


def test_instances_without_scope_match_every_level(archive: Archive) -> None:
    """``/instances`` matches study, series and instance keys together and returns study and
    series attributes (PS3.18 §10.6.3.3)."""
    keys = {"PatientName": "*JOHN", "Modality": "CT", "InstanceNumber": "2", "SOPClassUID": CT}
    result = search(archive, Level.IMAGE, keys)
    assert sorted(first(ds, "SOPInstanceUID") for ds in result.datasets) == sorted(
        [archive.instances[("chest", 0)][1], archive.instances[("chest", 1)][1]]
    )
    assert first(result.datasets[0], "PatientID") == "PAT001"
    assert first(result.datasets[0], "NumberOfStudyRelatedInstances") == 6


def test_instance_includefield_all_returns_whole_metadata(archive: Archive) -> None:
    """includefield=all at the instance level returns every stored element, private tags
    included, except bulk data, which WADO-RS serves (PS3.18 §10.6.3)."""
    study, series = archive.studies["knee"], archive.series[("knee", 0)]
    (dataset,) = search(
        archive, Level.IMAGE, study_uid=study, series_uid=series, include_all=True
    ).datasets
    assert values_of(dataset, "ImageType") == ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert dataset["00091001"] == {"vr": "LO", "Value": ["private"]}
    assert "7FE00010" not in dataset
    assert not any("BulkDataURI" in item or "InlineBinary" in item for item in dataset.values())
    assert first(dataset, "RetrieveURL").endswith(archive.instances[("knee", 0)][0])


def test_sop_class_uid_list_match(archive: Archive) -> None:
    """SOP Class UID is a UID-list key at the instance level (PS3.18 table 10.6.1-5)."""
    result = search(archive, Level.IMAGE, {"SOPClassUID": f"{SR},{CR}"})
    assert sorted(first(ds, "SOPClassUID") for ds in result.datasets) == [CR, SR]
