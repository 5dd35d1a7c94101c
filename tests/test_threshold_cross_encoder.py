"""score_threshold with the cross-encoder on: the threshold applies to the final scores (the
cross-encoder's for the rescored head), not to the fused scores the head had before rescoring."""

from mmsearch.client import Client
from mmsearch.v1 import search_pb2

from . import test_cross_encoder

# The tiny random cross-encoder and a server using it (rerank_k=3), shared with test_cross_encoder.py.
tiny_ce = test_cross_encoder.tiny_ce
ce_client = test_cross_encoder.ce_client

QUERY = "animals that hunt mice at night"
CE = search_pb2.RankingOptions(cross_encoder=True)


def test_threshold_applies_to_the_cross_encoder_scores(ce_client: Client) -> None:
    def ids(threshold: float, ranking: search_pb2.RankingOptions | None = None) -> list[str]:
        r = ce_client.search("zoo", QUERY, top_k=4, score_threshold=threshold, ranking=ranking)
        return [x.document_id for x in r.results]

    fused = {r.document_id: r.score for r in ce_client.search("zoo", QUERY, top_k=4).results}
    final = list(ce_client.search("zoo", QUERY, top_k=4, explain=True, ranking=CE).results)
    head = [r for r in final if "cross_encoder" in r.explanation.signals]
    assert len(head) == 3 and len(final) == 4  # rerank_k 3; the fourth keeps its fused score
    # one rescored document the cross-encoder lifts, one it lowers (the random model's scores, checked)
    up = next(r for r in head if r.score > fused[r.document_id] + 0.01)
    down = next(r for r in head if r.score < fused[r.document_id] - 0.01)

    t_up = (fused[up.document_id] + up.score) / 2
    assert up.document_id in ids(t_up, CE) and up.document_id not in ids(t_up)
    t_down = (fused[down.document_id] + down.score) / 2
    assert down.document_id not in ids(t_down, CE) and down.document_id in ids(t_down)
    for t in (t_up, t_down, 0.0, final[-1].score / 2):
        # exactly the unthresholded final list cut at t, in the same order
        assert ids(t, CE) == [r.document_id for r in final if r.score >= t]
    assert ids(1.0, CE) == []  # nothing reaches 1: an empty answer, not an error
