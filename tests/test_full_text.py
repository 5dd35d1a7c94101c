"""SearchRequest.full_text: a result's snippet is its whole passage instead of the first 300
characters (what `mmsearch finetune -c` mines its negatives from)."""

from mmsearch.client import Client

from .documents import text_item

LONG = " ".join(f"word{i}" for i in range(120))  # one passage of 120 words, ~830 characters


def test_full_text_returns_the_whole_passage(fake_client: Client) -> None:
    fake_client.create_collection("ft", max_words=180)
    assert all(a.ok for a in fake_client.ingest("ft", [text_item("doc", LONG)], create=False))
    short = fake_client.search("ft", "word7", top_k=1).results[0].snippet
    whole = fake_client.search("ft", "word7", top_k=1, full_text=True).results[0].snippet
    assert whole == LONG
    assert len(short) <= 301 and LONG.startswith(short.rstrip("…").rstrip()) and len(short) < len(LONG)
