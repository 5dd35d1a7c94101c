"""Questions about the figures, tables and sections of the PDFs in ../shared/data/pdf_documents, written
by hand after reading the pages, the way a reader would ask them (paraphrased: no sentence is copied
from its page). Each is judged on the page(s) that hold what it asks about: for a figure or a table
the page with the figure or table itself; for a section, the page(s) the section's text is on.

The PDFs are used for evaluation only (their licences: ../shared/data/pdf_documents/SOURCE.md and
docs/pages.md); this file names them and their page numbers, it ships none of their content.

(kind, question, pdf id, relevant pages); kinds: "figure", "table", "section".
"""

from __future__ import annotations

PAGE_QUESTIONS: list[tuple[str, str, str, list[int]]] = [
    # -- the ten questions of the first mixed set (docs/ranking.md), now labelled by kind
    ("table", "BLEU scores and training cost of translation models compared", "attention", [8]),
    ("section", "scaled dot-product attention and multi-head attention", "attention", [4, 5]),
    ("section", "sinusoidal positional encoding of token positions", "attention", [6]),
    ("section", "training data, batching and hardware schedule for WMT 2014", "attention", [7]),
    ("table", "variations of the transformer architecture: number of heads, key size, dropout", "attention", [9]),
    ("table", "english constituency parsing results", "attention", [10]),
    ("table", "self-attention complexity per layer compared with recurrent and convolutional layers", "attention", [6]),
    ("section", "in-batch negatives for training the dense passage retriever", "multi-column", [3, 4, 5, 6]),
    ("table", "top-20 retrieval accuracy on open-domain QA datasets", "multi-column", [5, 6]),
    ("table", "end-to-end question answering exact match results", "multi-column", [7, 8]),
    # -- figures
    (
        "figure",
        "diagram of the whole transformer with the encoder stack on the left and decoder on the right",
        "attention",
        [3],
    ),
    ("figure", "picture of the overall model architecture of the Transformer", "attention", [3]),
    ("figure", "drawing of how queries, keys and values flow through matmul, scaling and softmax", "attention", [4]),
    (
        "figure",
        "illustration of several attention layers running in parallel whose outputs are concatenated",
        "attention",
        [4],
    ),
    (
        "figure",
        "visualisation of an encoder attention head connecting the verb making to far away words",
        "attention",
        [13],
    ),
    ("figure", "attention weights following a long-distance dependency in layer 5", "attention", [13]),
    ("figure", "attention heads that seem to work out what the pronoun its refers to", "attention", [14]),
    ("figure", "anaphora resolution shown by two attention heads", "attention", [14]),
    ("figure", "two heads whose attention patterns reflect the structure of the sentence", "attention", [15]),
    ("figure", "plot of dense retriever top-k accuracy for different amounts of training data", "multi-column", [5]),
    ("figure", "chart showing a retriever trained on only 1k questions already beating BM25", "multi-column", [5, 6]),
    ("figure", "cover page of the Reliance integrated annual report with its we care themes", "reliance", [1]),
    ("figure", "exemple jouet d'un cube de ventes de boissons et ses dimensions", "fr_olap", [2]),
    (
        "figure",
        "curves of top-k accuracy from 20 to 100 retrieved passages versus number of training examples",
        "multi-column",
        [5],
    ),
    # -- tables
    ("table", "how many sequential operations a recurrent layer needs compared with self-attention", "attention", [6]),
    (
        "table",
        "maximum path length between positions for convolutional and restricted self-attention layers",
        "attention",
        [6],
    ),
    ("table", "training cost in FLOPs of the big transformer against ConvS2S and GNMT ensembles", "attention", [8]),
    (
        "table",
        "newstest2014 English-German and English-French BLEU of previous state of the art models",
        "attention",
        [8],
    ),
    ("table", "what happens to perplexity when the number of heads or the key dimension is changed", "attention", [9]),
    ("table", "learned positional embeddings instead of sinusoids: dev set BLEU and perplexity", "attention", [9]),
    ("table", "F1 on section 23 of the Wall Street Journal for the transformer and earlier parsers", "attention", [10]),
    ("table", "semi-supervised versus WSJ-only parsing scores", "attention", [10]),
    (
        "table",
        "number of train, dev and test questions in Natural Questions, TriviaQA, WebQuestions, TREC and SQuAD",
        "multi-column",
        [4],
    ),
    ("table", "size of each question answering dataset used in the experiments", "multi-column", [4]),
    ("table", "top-100 retrieval accuracy of BM25 versus DPR on TriviaQA and SQuAD", "multi-column", [5]),
    (
        "table",
        "does combining BM25 scores with the dense retriever improve accuracy on each dataset",
        "multi-column",
        [5],
    ),
    (
        "table",
        "random, BM25 and gold negatives with and without in-batch training: top-5, top-20, top-100",
        "multi-column",
        [6],
    ),
    ("table", "effect of batch size and one or two hard BM25 negatives on retrieval accuracy", "multi-column", [6]),
    ("table", "exact match of ORQA, REALM and DPR based QA systems on each dataset", "multi-column", [8]),
    (
        "table",
        "retrieval accuracy when training on the top BM25 passage containing the answer instead of gold context",
        "multi-column",
        [12],
    ),
    ("table", "dot product versus L2 distance and triplet loss: top-k accuracy", "multi-column", [12]),
    (
        "table",
        "example questions where BM25 returned an irrelevant passage but the dense retriever found the answer",
        "multi-column",
        [13],
    ),
    ("table", "Reliance market capitalisation, revenue and net profit in crore", "reliance", [2, 3]),
    # -- sections
    ("section", "why recurrent networks are hard to parallelise for sequence transduction", "attention", [2]),
    ("section", "earlier models that cut sequential computation with convolutions like ByteNet", "attention", [2]),
    ("section", "residual connections and layer normalisation around every sub-layer of the encoder", "attention", [3]),
    ("section", "why the dot products are divided by the square root of the key dimension", "attention", [4]),
    (
        "section",
        "the three places attention is used, including masking future positions in the decoder",
        "attention",
        [5],
    ),
    ("section", "inner dimension of the position-wise feed-forward network", "attention", [5]),
    ("section", "sharing the weight matrix between the embeddings and the pre-softmax linear layer", "attention", [5]),
    (
        "section",
        "motivation for self-attention: cost per layer, parallelism and long-range dependencies",
        "attention",
        [6],
    ),
    ("section", "learning rate schedule with warmup for the Adam optimiser", "attention", [7]),
    ("section", "dropout rate and label smoothing used as regularisation", "attention", [7, 8]),
    ("section", "how long the base and big models trained on eight P100 GPUs", "attention", [7]),
    ("section", "beam search size and length penalty used for decoding translations", "attention", [8]),
    ("section", "plans to apply attention models to images, audio and video", "attention", [10]),
    ("section", "summary of the paper's contribution and headline BLEU scores in the abstract", "attention", [1]),
    (
        "section",
        "why sparse term-matching retrievers miss synonyms and paraphrases in open-domain QA",
        "multi-column",
        [1],
    ),
    (
        "section",
        "encoding all passages offline and indexing them with FAISS for run time retrieval",
        "multi-column",
        [3],
    ),
    (
        "section",
        "the loss that trains question and passage encoders with one positive and many negatives",
        "multi-column",
        [3, 4],
    ),
    ("section", "splitting the English Wikipedia dump into 100 word passages", "multi-column", [4]),
    (
        "section",
        "how positive passages are chosen for datasets that give only question and answer",
        "multi-column",
        [4],
    ),
    ("section", "retrieval speed in questions per second and the time to build the index", "multi-column", [7]),
    ("section", "how the reader scores retrieved passages and extracts the answer span", "multi-column", [7]),
    ("section", "how well a retriever trained on Natural Questions generalises to other datasets", "multi-column", [6]),
    ("section", "conclusion of the dense passage retrieval paper", "multi-column", [9]),
    ("section", "open-source library for deep learning based document image analysis", "layout-parser", [1]),
    (
        "section",
        "practical obstacles to reusing deep learning models for document image analysis",
        "layout-parser",
        [4],
    ),
    (
        "section",
        "letter reporting which sugar refining companies accepted membership of the foundation",
        "ocr-letter",
        [1],
    ),
    ("section", "définition du langage QSL et de ses opérateurs sur les requêtes", "fr_olap", [3]),
    ("section", "comment mesurer la qualité d'un résumé de log de requêtes", "fr_olap", [5]),
    ("section", "algorithmes pour résumer un log de requêtes OLAP", "fr_olap", [6]),
    ("section", "état de l'art sur les logs de requêtes et travaux futurs", "fr_olap", [11]),
]

#: The PDFs of the set: id -> file name in pdf_documents.
PDFS = {
    "attention": "attention.pdf",
    "multi-column": "multi-column.pdf",
    "fr_olap": "fr_olap.pdf",
    "reliance": "reliance.pdf",
    "layout-parser": "layout-parser-paper-with-empty-pages.pdf",
    "ocr-letter": "pdf-with-ocr-text.pdf",
}
