"""A blind page query set for ../shared/data/pdf_documents: questions written WITHOUT the pages open.

Protocol (session 9, issue 13): the questions below were written from the file list and one-line
descriptions in SOURCE.md and from what the writer already knew about these documents, before any
PDF, pages.jsonl text or the older set (page_questions.py) was read, and committed that way. Only
then were the pages read to judge which pages answer each question (relevant pages, 1-based). A
question no page answers is dropped (kept commented out with "# unanswerable: ..."), never reworded.

Judging rule: a page is relevant when it gives what the question asks for (the section, table,
figure or statement that answers it); a page that only names the topic in passing is not. A figure or
table question whose content is given in another form (the figure does not exist, but the page says
it in prose or shows it as a chart) counts as answered by that page; one that asks for something
inherently visual that no page shows (example images, a multi-year chart) is dropped. reliance.pdf's
pages 2 and 3 have the same text layer (the spread's text); they were judged by their images
(p.2 "Reliance at a glance", p.3 contents). The comment above each entry says where the answer is.
Written 74 (15 figure, 20 table, 39 section); dropped 7 (2 figure, 3 table, 2 section); 67 kept.

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
    # Figure 1
    (
        "figure",
        "diagram of the whole model with the encoder stack on the left and decoder on the right",
        "attention",
        [3],
    ),
    # Figure 2
    (
        "figure",
        "picture comparing one attention function with several run side by side in parallel",
        "attention",
        [4],
    ),
    # Figure 2 (right)
    (
        "figure",
        "where is the drawing with queries, keys and values passing through linear layers and then concatenated",
        "attention",
        [4],
    ),
    # Figure 3
    (
        "figure",
        "visualization where one word pays attention to words far away from it in the sentence",
        "attention",
        [13],
    ),
    # Figure 4
    ("figure", "example of attention heads working out what a pronoun refers to", "attention", [14]),
    # Figure 5
    (
        "figure",
        "heads that appear to learn the grammatical structure of a sentence, drawn as lines between words",
        "attention",
        [15],
    ),
    # Figure 1
    (
        "figure",
        "plot of how the dense retriever's accuracy grows as it gets more training questions",
        "multi-column",
        [5],
    ),
    # Figure 1 (top-k accuracy, k = 20..100, BM25 vs DPR)
    (
        "figure",
        "chart comparing top-k hit rate of the neural retriever and the keyword baseline for k up to 100",
        "multi-column",
        [5],
    ),
    # no diagram in the text pages; p.4 lists the four components
    ("figure", "diagram of the main building blocks of the document layout toolkit", "layout-parser", [4]),
    # unanswerable: no page image or figure with detected layout boxes (pp.2-3 blank, pp.1 and 4 text only)
    # ("figure", "example images of scanned pages with detected layout boxes drawn on them", "layout-parser", []),
    # no such figure; summaries of the toy log are worked out in prose (p.2), Exemple 3.2 (p.4), Exemple 6.1 (p.8)
    ("figure", "figure showing an example summary of a log of analytical queries", "fr_olap", [2, 4, 8]),
    # FIG. 1, the toy example's dimensions
    ("figure", "schéma du cube ou de l'entrepôt de données utilisé comme exemple", "fr_olap", [2]),
    # FIG. 2 (a)
    ("figure", "graph of running time against the size of the query log in the experiments", "fr_olap", [9]),
    # unanswerable: no chart or multi-year figures; p.2 gives one year's revenue and net profit only
    # ("figure", "chart of the company's revenue and profit growth over recent years", "reliance", []),
    # cover page: photo collage
    ("figure", "photos on the cover page of the annual report", "reliance", [1]),
    # ---------------------------------------------------------------- tables
    # Table 1
    (
        "table",
        "how do self-attention, recurrent and convolutional layers compare in"
        " cost per layer and longest path between two positions",
        "attention",
        [6],
    ),
    # Table 2
    (
        "table",
        "translation scores against earlier systems along with how much compute they needed to train",
        "attention",
        [8],
    ),
    # Table 2
    (
        "table",
        "how much training compute in floating point operations did the big model use for English to French",
        "attention",
        [8],
    ),
    # Table 3 rows (A), (B)
    ("table", "results when changing the number of heads and the size of keys", "attention", [9]),
    # p.6 section 3.5 says it; Table 3 row (E)
    (
        "table",
        "what happens to quality when sinusoids are replaced by learned position embeddings",
        "attention",
        [6, 9],
    ),
    # p.8 label smoothing hurts perplexity, helps BLEU; Table 3 rows (D)
    ("table", "effect of turning off dropout or label smoothing on perplexity and BLEU", "attention", [8, 9]),
    # Table 4
    ("table", "F1 scores on the Wall Street Journal parsing benchmark compared to other parsers", "attention", [10]),
    # Table 1
    ("table", "how many questions are in the train, dev and test splits of each QA dataset", "multi-column", [4]),
    # Table 2
    ("table", "top-20 and top-100 accuracy of BM25 versus the dense retriever on each dataset", "multi-column", [5]),
    # Table 2, Single vs Multi, and its discussion
    (
        "table",
        "does training the retriever on all datasets together beat training on one dataset",
        "multi-column",
        [5],
    ),
    # Table 3
    (
        "table",
        "comparison of picking negatives at random, from BM25 or from other questions' gold passages",
        "multi-column",
        [6],
    ),
    # Table 4
    ("table", "exact match scores of the full question answering pipeline on each benchmark", "multi-column", [8]),
    # p.6 'Impact of gold passages'; Table 5
    (
        "table",
        "does choosing the positive passage with distant supervision instead of the gold one hurt retrieval",
        "multi-column",
        [6, 12],
    ),
    # p.6 'Similarity and loss'; Table 6
    ("table", "numbers for Euclidean distance versus inner product and for triplet loss", "multi-column", [6, 12]),
    # no table; p.9 describes the FoodMart logs (4 files of 119-905 queries)
    (
        "table",
        "table describing the synthetic logs used in the experiments, with number of sessions and queries",
        "fr_olap",
        [9],
    ),
    # no table; FIG. 3 and its discussion
    ("table", "tableau des résultats de qualité des résumés obtenus", "fr_olap", [10]),
    # 'India's largest company' key figures: revenue, net profit (no EBITDA)
    ("table", "key financial figures: revenue, EBITDA and net profit", "reliance", [2]),
    # unanswerable: no revenue by segment on any page (p.3 lists the segments as contents only)
    # (
    #     "table",
    #     "revenue broken down by business segment such as refining, petrochemicals, retail and digital",
    #     "reliance",
    #     [],
    # ),
    # unanswerable: no list of models or data sets on the two text pages
    # ("table", "list of pretrained models and the datasets they were trained on", "layout-parser", []),
    # unanswerable: no layout categories or data sets on the two text pages
    # (
    #     "table",
    #     "which layout categories like text, title, list, table and figure each dataset labels",
    #     "layout-parser",
    #     [],
    # ),
    # ---------------------------------------------------------------- sections
    # 3.2.1 and footnote 4
    ("section", "why are the dot products divided by the square root of the key size", "attention", [4]),
    # 3.3, d_ff = 2048
    ("section", "how wide is the hidden layer of the feed-forward part of each block", "attention", [5]),
    # 3.5 Positional Encoding
    ("section", "how does the model know word order if there is no recurrence or convolution", "attention", [6]),
    # 5.3 Optimizer
    ("section", "what learning rate schedule with a warmup did they use", "attention", [7]),
    # 5.2 Hardware and Schedule
    ("section", "what hardware was the model trained on and for how long", "attention", [7]),
    # 5.1 Training Data and Batching
    ("section", "how large was the vocabulary and how were words split into subword units", "attention", [7]),
    # 3.1 Decoder masking; 3.2.3 masking to -inf
    ("section", "how is the decoder prevented from looking at tokens that come later", "attention", [3, 5]),
    # 6.1: beam 4, alpha 0.6
    ("section", "what beam size and length penalty were used when decoding", "attention", [8]),
    # conclusion: tensor2tensor
    ("section", "where can I download the code to train these models", "attention", [10]),
    # Acknowledgements
    ("section", "who do the authors thank for comments and inspiration", "attention", [10]),
    # 4 Why Self-Attention
    ("section", "reasons for preferring self-attention over recurrent layers", "attention", [6, 7]),
    # 3.1 Encoder
    ("section", "how many identical layers are stacked in the encoder and what is in each one", "attention", [3]),
    # 5.4 Regularization (heading on p.7, content p.8)
    ("section", "what regularization was applied during training", "attention", [8]),
    # 3.1 Decoder third sub-layer; 3.2.3 encoder-decoder attention
    ("section", "how does the decoder use the encoder's output", "attention", [3, 5]),
    # 2 Background
    ("section", "earlier work that cut sequential computation with convolutional networks", "attention", [2]),
    # contribution footnote
    ("section", "which author did what: statement of each person's contribution", "attention", [1]),
    # 6.3 English Constituency Parsing, Table 4, conclusion
    ("section", "does the architecture work for tasks other than translation", "attention", [9, 10]),
    # 4.1 Wikipedia Data Pre-processing
    ("section", "how was Wikipedia cut into passages and how many passages are there", "multi-column", [4]),
    # 3.2 In-batch negatives; 5.2 in-batch negative training
    (
        "section",
        "reusing the other questions' passages in a mini-batch as negatives to make training cheaper",
        "multi-column",
        [3, 6],
    ),
    # 3.1 Encoders: two BERT
    ("section", "what networks encode the questions and the passages", "multi-column", [3]),
    # 5.4 Run-time Efficiency
    (
        "section",
        "how fast is the dense retriever at query time compared to BM25 and how long does building the index take",
        "multi-column",
        [7],
    ),
    # 5.3 and Appendix C qualitative analysis
    ("section", "when does the keyword baseline do better than the dense model", "multi-column", [7, 12]),
    # 6.1 End-to-end QA System
    ("section", "how does the reader pick the answer span from the retrieved passages", "multi-column", [7]),
    # 5.1 two reasons for SQuAD
    ("section", "why does the dense retriever do worse on SQuAD", "multi-column", [5]),
    # intro definition; 2 Background
    ("section", "how is open-domain question answering defined as a task", "multi-column", [1, 2]),
    # 6.2 contrast with ORQA and REALM; 7 Related Work
    ("section", "related work such as ORQA and REALM that also learn retrievers", "multi-column", [8, 9]),
    # 8 Conclusion
    ("section", "what do the authors conclude about dense retrieval", "multi-column", [9]),
    # Figure 1 caption; 5.2 Sample efficiency
    ("section", "how many labelled training examples are needed to outperform BM25", "multi-column", [5, 6]),
    # unanswerable: the paper defines queries and logs (p.3), never a session
    # ("section", "Quelle est la définition d'une session de requêtes OLAP ?", "fr_olap", []),
    # 4 Mesure de qualité: intuition, hf-measure
    ("section", "how is the quality of a summary of the query log measured", "fr_olap", [5, 6]),
    # introduction; 8 Travaux existants
    ("section", "Quels travaux existants sur l'analyse des logs de requêtes sont cités ?", "fr_olap", [1, 11]),
    # 8 ... et perspectives
    ("section", "what future work do the authors propose", "fr_olap", [11]),
    # 3.2 Les opérateurs de QSL
    ("section", "what operators does the summarization language provide", "fr_olap", [3, 4]),
    # 3.1 Définitions préliminaires
    (
        "section",
        "how do they formally define a query, with its grouping levels, selections and measures",
        "fr_olap",
        [3],
    ),
    # the chairman's quote on the contents page (COVID-19 year)
    ("section", "what did the chairman say about the year", "reliance", [3]),
    # unanswerable: 'a greener planet' and ESG appear as titles only; no commitment is stated
    # ("section", "sustainability commitments such as reaching net zero carbon", "reliance", []),
    # abstract; introduction
    ("section", "what problem does the toolkit address and who is it meant for", "layout-parser", [1, 4]),
    # abstract; component 4, the model hub
    (
        "section",
        "how can people share their trained models and pipelines with the community",
        "layout-parser",
        [1, 4],
    ),
    # one page: the memo's FROM line and its subject
    ("section", "who signed the scanned letter and what is it about", "ocr-letter", [1]),
]
