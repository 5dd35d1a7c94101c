"""A blind page query set for ../shared/data/pdf_documents: questions written WITHOUT the pages open.

Protocol (session 9, issue 13): the questions below were written from the file list and one-line
descriptions in SOURCE.md and from what the writer already knew about these documents, before any
PDF, pages.jsonl text or the older set (page_questions.py) was read, and committed that way. Only
then were the pages read to judge which pages answer each question (relevant pages, 1-based). A
question no page answers is dropped (kept commented out with "# unanswerable: ..."), never reworded.

Each entry: (kind, question, pdf id from page_questions.PDFS, relevant pages).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page_questions import PDFS

__all__ = ["PAGE_QUESTIONS_BLIND", "PDFS"]

PAGE_QUESTIONS_BLIND: list[tuple[str, str, str, list[int]]] = [
    # ---------------------------------------------------------------- figures
    (
        "figure",
        "diagram of the whole model with the encoder stack on the left and decoder on the right",
        "attention",
        [],
    ),
    ("figure", "picture comparing one attention function with several run side by side in parallel", "attention", []),
    (
        "figure",
        "where is the drawing with queries, keys and values passing through linear layers and then concatenated",
        "attention",
        [],
    ),
    (
        "figure",
        "visualization where one word pays attention to words far away from it in the sentence",
        "attention",
        [],
    ),
    ("figure", "example of attention heads working out what a pronoun refers to", "attention", []),
    (
        "figure",
        "heads that appear to learn the grammatical structure of a sentence, drawn as lines between words",
        "attention",
        [],
    ),
    (
        "figure",
        "plot of how the dense retriever's accuracy grows as it gets more training questions",
        "multi-column",
        [],
    ),
    (
        "figure",
        "chart comparing top-k hit rate of the neural retriever and the keyword baseline for k up to 100",
        "multi-column",
        [],
    ),
    ("figure", "diagram of the main building blocks of the document layout toolkit", "layout-parser", []),
    ("figure", "example images of scanned pages with detected layout boxes drawn on them", "layout-parser", []),
    ("figure", "figure showing an example summary of a log of analytical queries", "fr_olap", []),
    ("figure", "schéma du cube ou de l'entrepôt de données utilisé comme exemple", "fr_olap", []),
    ("figure", "graph of running time against the size of the query log in the experiments", "fr_olap", []),
    ("figure", "chart of the company's revenue and profit growth over recent years", "reliance", []),
    ("figure", "photos on the cover page of the annual report", "reliance", []),
    # ----------------------------------------------------------------- tables
    (
        "table",
        "how do self-attention, recurrent and convolutional layers compare in cost per layer"
        " and longest path between two positions",
        "attention",
        [],
    ),
    (
        "table",
        "translation scores against earlier systems along with how much compute they needed to train",
        "attention",
        [],
    ),
    (
        "table",
        "how much training compute in floating point operations did the big model use for English to French",
        "attention",
        [],
    ),
    ("table", "results when changing the number of heads and the size of keys", "attention", []),
    ("table", "what happens to quality when sinusoids are replaced by learned position embeddings", "attention", []),
    ("table", "effect of turning off dropout or label smoothing on perplexity and BLEU", "attention", []),
    ("table", "F1 scores on the Wall Street Journal parsing benchmark compared to other parsers", "attention", []),
    ("table", "how many questions are in the train, dev and test splits of each QA dataset", "multi-column", []),
    ("table", "top-20 and top-100 accuracy of BM25 versus the dense retriever on each dataset", "multi-column", []),
    ("table", "does training the retriever on all datasets together beat training on one dataset", "multi-column", []),
    (
        "table",
        "comparison of picking negatives at random, from BM25 or from other questions' gold passages",
        "multi-column",
        [],
    ),
    ("table", "exact match scores of the full question answering pipeline on each benchmark", "multi-column", []),
    (
        "table",
        "does choosing the positive passage with distant supervision instead of the gold one hurt retrieval",
        "multi-column",
        [],
    ),
    ("table", "numbers for Euclidean distance versus inner product and for triplet loss", "multi-column", []),
    (
        "table",
        "table describing the synthetic logs used in the experiments, with number of sessions and queries",
        "fr_olap",
        [],
    ),
    ("table", "tableau des résultats de qualité des résumés obtenus", "fr_olap", []),
    ("table", "key financial figures: revenue, EBITDA and net profit", "reliance", []),
    (
        "table",
        "revenue broken down by business segment such as refining, petrochemicals, retail and digital",
        "reliance",
        [],
    ),
    ("table", "list of pretrained models and the datasets they were trained on", "layout-parser", []),
    (
        "table",
        "which layout categories like text, title, list, table and figure each dataset labels",
        "layout-parser",
        [],
    ),
    # --------------------------------------------------------------- sections
    ("section", "why are the dot products divided by the square root of the key size", "attention", []),
    ("section", "how wide is the hidden layer of the feed-forward part of each block", "attention", []),
    ("section", "how does the model know word order if there is no recurrence or convolution", "attention", []),
    ("section", "what learning rate schedule with a warmup did they use", "attention", []),
    ("section", "what hardware was the model trained on and for how long", "attention", []),
    ("section", "how large was the vocabulary and how were words split into subword units", "attention", []),
    ("section", "how is the decoder prevented from looking at tokens that come later", "attention", []),
    ("section", "what beam size and length penalty were used when decoding", "attention", []),
    ("section", "where can I download the code to train these models", "attention", []),
    ("section", "who do the authors thank for comments and inspiration", "attention", []),
    ("section", "reasons for preferring self-attention over recurrent layers", "attention", []),
    ("section", "how many identical layers are stacked in the encoder and what is in each one", "attention", []),
    ("section", "what regularization was applied during training", "attention", []),
    ("section", "how does the decoder use the encoder's output", "attention", []),
    ("section", "earlier work that cut sequential computation with convolutional networks", "attention", []),
    ("section", "which author did what: statement of each person's contribution", "attention", []),
    ("section", "does the architecture work for tasks other than translation", "attention", []),
    ("section", "how was Wikipedia cut into passages and how many passages are there", "multi-column", []),
    (
        "section",
        "reusing the other questions' passages in a mini-batch as negatives to make training cheaper",
        "multi-column",
        [],
    ),
    ("section", "what networks encode the questions and the passages", "multi-column", []),
    (
        "section",
        "how fast is the dense retriever at query time compared to BM25 and how long does building the index take",
        "multi-column",
        [],
    ),
    ("section", "when does the keyword baseline do better than the dense model", "multi-column", []),
    ("section", "how does the reader pick the answer span from the retrieved passages", "multi-column", []),
    ("section", "why does the dense retriever do worse on SQuAD", "multi-column", []),
    ("section", "how is open-domain question answering defined as a task", "multi-column", []),
    ("section", "related work such as ORQA and REALM that also learn retrievers", "multi-column", []),
    ("section", "what do the authors conclude about dense retrieval", "multi-column", []),
    ("section", "how many labelled training examples are needed to outperform BM25", "multi-column", []),
    ("section", "Quelle est la définition d'une session de requêtes OLAP ?", "fr_olap", []),
    ("section", "how is the quality of a summary of the query log measured", "fr_olap", []),
    ("section", "Quels travaux existants sur l'analyse des logs de requêtes sont cités ?", "fr_olap", []),
    ("section", "what future work do the authors propose", "fr_olap", []),
    ("section", "what operators does the summarization language provide", "fr_olap", []),
    (
        "section",
        "how do they formally define a query, with its grouping levels, selections and measures",
        "fr_olap",
        [],
    ),
    ("section", "what did the chairman say about the year", "reliance", []),
    ("section", "sustainability commitments such as reaching net zero carbon", "reliance", []),
    ("section", "what problem does the toolkit address and who is it meant for", "layout-parser", []),
    ("section", "how can people share their trained models and pipelines with the community", "layout-parser", []),
    ("section", "who signed the scanned letter and what is it about", "ocr-letter", []),
]
