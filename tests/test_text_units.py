import pytest

from mmsearch.server.errors import InvalidArgument
from mmsearch.server.ingest.text import decode_utf8, split_passages
from mmsearch.server.ranking import fusion


def test_split_passages_overlap_and_positions() -> None:
    text = " ".join(f"w{i}" for i in range(25))
    ps = split_passages(text, max_words=10, overlap_words=3)
    assert [p.text.split()[0] for p in ps] == ["w0", "w7", "w14", "w21"]
    assert ps[0].text.split()[-3:] == ps[1].text.split()[:3]
    assert ps[-1].text.split()[-1] == "w24"
    # every word is covered
    covered = {w for p in ps for w in p.text.split()}
    assert covered == set(text.split())


def test_short_and_empty_text() -> None:
    assert [p.text for p in split_passages("  hello   world \n", 10, 3)] == ["hello world"]
    assert split_passages("   \n\t ", 10, 3) == []


def test_decode_utf8_names_bad_byte() -> None:
    assert decode_utf8("héllo".encode(), "x") == "héllo"
    assert decode_utf8(b"\xef\xbb\xbfbom", "x") == "bom"
    with pytest.raises(InvalidArgument, match=r"byte 0xff at offset 3"):
        decode_utf8(b"abc\xffdef", "text of item 'a'")


def test_fusion_strategies_rank_consistent_winner() -> None:
    ids = ["a", "b", "c"]
    signals = {"dense": {"a": 0.9, "b": 0.5, "c": 0.1}, "maxsim": {"a": 0.8, "b": 0.6, "c": 0.2}, "lexical": {"a": 5.0}}
    w = {"dense": 1.0, "maxsim": 0.3, "lexical": 1.0}
    for fused in (fusion.weighted_zscore(signals, ids, w), fusion.rrf(signals, ids, w), fusion.dbsf(signals, ids, w)):
        assert fused.argmax() == 0 and fused.argmin() == 2
    scores = fusion.squash(fusion.weighted_zscore(signals, ids, w), "weighted_zscore", 2.3)
    assert ((scores >= 0) & (scores <= 1)).all()


def test_zscores_over_candidates() -> None:
    """The one z-score (fusion and search's MaxSim cascade): mean 0, unit spread; no spread gives 0."""
    assert fusion.zscores({"a": 1.0, "b": 3.0, "c": 2.0}) == pytest.approx({"a": -1.2247449, "b": 1.2247449, "c": 0.0})
    assert fusion.zscores({"a": 0.7, "b": 0.7}) == {"a": 0.0, "b": 0.0}
    assert fusion.zscores({}) == {}
