"""Find the passages that best match a question: dense + BM25 fused, names steer, filters, diversity."""

from __future__ import annotations

import logging
import os
import re
from array import array
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np

from bot.ingest.chunking import Chunk, chunk_sentences
from bot.embed.embedders import Embedder
from bot.index.keyword import KeywordIndex, Part, Tokens, terms, tokenize
from bot.search.sentence_keywords import SampledSentenceKeyword
from bot.index.store import LoadedIndex
from bot.index.textvectors import AuxVectors
from bot.index.tokencache import passage_tokens
from bot.ingest.text import Sentence
from bot.search.fusion import SIGNALS, FusionWeights, fuse
from bot.search.query import (descriptions, embedding_query, matches, name_counts, name_key, names_in,
                              normalize_name, place_variants, scoped_projects, without_descriptions)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class RetrievalParams:
    """Weights of the fused score, each over standard scores; tuned with `qabot eval` (BENCHMARKS.md)."""

    dense: float = 0.5  # cosine of question and passage (context header + text)
    sentence: float = 1.5  # best cosine of question and one sentence of the passage
    heading_dense: float = 0.25  # cosine of question and the interview question the passage answers
    body: float = 1.0  # BM25 over the interview question + passage text
    sentence_kw: float = 0.5  # BM25 of the passage's best-matching sentence
    heading: float = 1.0  # BM25 over project, adopter, section and question
    interview: float = 0.6  # cosine of question and the interview's centroid (whole-interview topic)
    profile: float = 1.0  # BM25 of question and who the interviewee is (title, preamble, first section)
    profile_self: float = 0.0  # share of the profile boost the profile passages themselves get
    adopter_boost: float = 6.0  # added when the question names the passage's adopter
    project_boost: float = 2.5  # added (shared among named projects) when it names the passage's project
    repeat_penalty: float = 0.2  # ranking: subtracted per passage already ranked from the same interview
    described: float = 0.5  # BM25 of the adopter description alone ("the Dutch bank") vs profiles
    strip_description: float = 1.0  # 1: the description's words leave the passage-level keyword match
    local_z: float = 1.0  # within a named adopter's interview, passage signals standardised over its passages (0-1 mix)
    places: float = 1.0  # 1: a demonym in a description also matches its country ("German" -> "Germany")
    filter_local: float = 1.0  # 1: with an `adopter` filter, its passages are ranked like a named adopter's
    scope_boost: float = 20.0  # project boost when the question is about "<P> adopters"
    scope_share: float = 0.0  # share of the project boost kept by projects named as topic beside "<P> adopters"
    candidates: int = 60  # passages re-ranked for diversity
    scope_terms: float = 1.0  # 1: the project of "<P> adopters" leaves the keyword match like a named adopter
    # BM25 of the question over each whole interview (standard scores over interviews) in passage ranking;
    # off: it only picks the interviews a plural question cites (Scores.interview_kw, answering.py)
    interview_kw: float = 0.0
    described_query: float = 0.5  # passage cosines use the question without its description (0-1 mix)
    described_local: float = 0.5  # a description matching one interview by this many standard scores more
    # than any other: its passages are ranked among themselves like a named adopter's (0: never)
    described_boost: float = 3.0  # added to the passages of a clearly described interview (see described_local)
    described_dense: float = 2.5  # best cosine of the description alone with a sentence of an interview's profile


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its scores (`score` is what ranking used; `dense` is the cosine)."""

    chunk: Chunk
    score: float
    dense: float
    keyword: float = 0.0  # raw BM25 over the passage
    row: int = -1  # row of the chunk in the index
    sentence: float = 0.0  # best sentence cosine
    doc: int = -1  # which interview of the index the chunk is from


@dataclass
class Scores:
    """Every chunk's scores for one query, every sentence's, and what the query named."""

    dense: np.ndarray  # per chunk: cosine of question and passage
    sentence: np.ndarray  # per chunk: best sentence cosine (the passage cosine when no sentence vectors)
    body: np.ndarray  # per chunk: raw BM25
    fused: np.ndarray  # per chunk: what ranking uses
    sentence_dense: np.ndarray | None  # per sentence: cosine (None without sentence vectors)
    sentence_kw: np.ndarray  # per sentence: BM25 of the sentence (empty for a large index: bot/search/sentence_keywords.py)
    query_terms: list[str] = field(default_factory=list)  # stemmed content words of the question
    name_terms: set[str] = field(default_factory=set)  # stems of the project names the question mentions
    adopters: set[str] = field(default_factory=set)  # name keys of adopters the query mentions
    projects: set[str] = field(default_factory=set)
    interview_kw: np.ndarray | None = None  # per interview: standard score of BM25 over the whole interview


@dataclass
class Retrieval:
    """The ranked hits of one query and the scores behind them."""

    hits: list[Hit]
    scores: Scores


def _dot(matrix: np.ndarray, vector: np.ndarray) -> np.ndarray:
    """Matrix-vector product without BLAS threads, which cost 10x more than they save at this size."""
    return np.einsum("ij,j->i", matrix, np.asarray(vector, dtype=matrix.dtype))


Z_CAP = 6.0  # standard scores are clipped here so one runaway signal can't outvote all the others
DENSE_CANDIDATES = 2000  # passages scored through an IVF index per question (large indexes only)
DENSE_SAMPLE = 4096  # passages whose exact cosines give the spread of all cosines (large indexes only)
# Above this many passages (without sentence vectors) the best-sentence BM25 comes from bot/search/sentence_keywords.py instead of
# a keyword index of every sentence; the same size as the switch to an IVF index (store.ANN_THRESHOLD).
SENTENCE_KW_THRESHOLD = 20_000
PASSAGE_TERMS_CACHE = 4096  # passages whose term sets are kept (~2 KB each; a question checks a few)
_VECTOR_BLOCK = 16384  # rows of the vector file read at a time while interview centroids are summed


def _drop_pages(mapped: object) -> None:
    """Let the kernel drop a memory-mapped file's resident pages (they are read again if touched)."""
    if hasattr(mapped, "madvise"):
        import mmap

        mapped.madvise(mmap.MADV_DONTNEED)


def _passage_tokens(index: LoadedIndex, chunks: Sequence[Chunk]) -> Tokens:
    """Token ids of every passage text of a large index: kept in its generation (format 3), else from the cache
    beside it where it has them."""
    try:
        stored = index.text_tokens() if hasattr(index, "text_tokens") else None
    except Exception as exc:  # noqa: BLE001 - tokenizing again only takes longer
        logger.warning("passage tokens of the generation unusable: %s", exc)
        stored = None
    if stored is not None and len(stored) == len(chunks):
        return stored
    texts = [c.text for c in chunks]
    try:
        return passage_tokens(Path(index.path).parent, texts)
    except Exception as exc:  # noqa: BLE001 - the cache only saves time
        logger.warning("passage token cache unusable: %s", exc)
        return tokenize(texts)


def _top(values: np.ndarray, m: int) -> np.ndarray:
    """Positions of the m largest values, best first, ties in position order (a stable sort of -values, cut):
    at 171k passages, a partition first saves a full sort (15 ms) per question."""
    neg = -values
    if len(neg) <= max(4 * m, 4096):
        return np.argsort(neg, kind="stable")[:m]
    kth = np.partition(neg, m - 1)[m - 1]
    pick = np.flatnonzero(neg <= kth)
    return pick[np.argsort(neg[pick], kind="stable")][:m]


def _read_rows(vectors: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Some rows of a memory-mapped vector file, read from the file: touching them through the map would map
    the neighbouring cached pages too (fault-around), about the whole file for rows picked at random."""
    filename, offset = getattr(vectors, "filename", None), getattr(vectors, "offset", None)
    if filename is None or offset is None or not vectors.flags.c_contiguous or vectors.ndim != 2:
        return np.array(vectors[rows], dtype=np.float32)
    out = np.empty((len(rows), vectors.shape[1]), dtype=vectors.dtype)
    size = out.shape[1] * out.itemsize
    with open(filename, "rb", buffering=0) as f:
        for i, r in enumerate(rows.tolist()):
            got = os.pread(f.fileno(), size, offset + r * size)
            if len(got) != size:
                return np.array(vectors[rows], dtype=np.float32)
            out[i] = np.frombuffer(got, dtype=vectors.dtype)
    return out.astype(np.float32, copy=False)


class _Unnumbered(Sequence[range]):
    """`Retriever.sentence_rows` of a large index: sentences are not numbered across it (there are no sentence
    vectors to index), so every passage's positions are empty."""

    def __init__(self, size: int) -> None:
        self._size = size

    def __len__(self) -> int:
        return self._size

    def __getitem__(self, row: int) -> range:  # type: ignore[override]
        if not -self._size <= row < self._size:
            raise IndexError(row)
        return range(0)


def _z(x: np.ndarray) -> np.ndarray:
    """Standard scores, clipped at ±Z_CAP (all zeros when the spread is zero).

    The same arithmetic as `np.clip((x - x.mean()) / x.std(), ...)`, bit for bit, without numpy's Python-level
    wrappers around mean, std and clip: a question takes about ten of these, and the wrappers were 7% of its
    time."""
    n = len(x)
    if not n or x.dtype.kind != "f":
        return _z_reference(x)
    # np.mean and np.var: a pairwise sum in the array's float type, divided by the count in float64.
    mean = x.dtype.type(float(np.add.reduce(x)) / n)
    z = np.subtract(x, mean)  # = x - float(mean): a Python float is taken in the array's type
    sd = float(np.sqrt(x.dtype.type(float(np.add.reduce(z * z)) / n)))
    if sd <= 1e-9:
        return np.zeros_like(x)
    z /= sd
    return np.minimum(np.maximum(z, -Z_CAP, out=z), Z_CAP, out=z)


def _z_reference(x: np.ndarray) -> np.ndarray:
    """`_z` by numpy's own mean, std and clip (any dtype)."""
    sd = float(x.std()) if len(x) else 0.0
    if sd <= 1e-9:
        return np.zeros_like(x)
    return np.clip((x - float(x.mean())) / sd, -Z_CAP, Z_CAP)


def _profile_rows(chunks: Sequence[Chunk], rows: list[int]) -> list[int]:
    """The rows that say who an interviewee is: the preamble and the first section after it."""
    first = next((chunks[r].section for r in rows if chunks[r].section != "Interview details"), None)
    return [r for r in rows if chunks[r].section in ("Interview details", first)]


class Retriever:
    """Hybrid search over one loaded index generation."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, params: RetrievalParams | None = None,
                 aux: AuxVectors | None = None, fusion: FusionWeights | None = None) -> None:
        self.index = index
        self.embedder = embedder
        self.params = params or RetrievalParams()
        self.fusion = fusion  # fitted weights (bot/search/weights.json); None: the hand-set params
        chunks = index.chunks
        n = len(chunks)
        self._vectors = np.asarray(index.vectors, dtype=np.float32)
        if aux is not None and len(aux.heading_vectors) != n:
            logger.warning("sentence vectors do not match the index; using passage vectors only")
            aux = None
        # A large index has no sentence vectors and no keyword index of every sentence (bot/search/sentence_keywords.py).
        large = n > SENTENCE_KW_THRESHOLD and aux is None
        cache = not large  # small indexes keep their texts' token ids for the next reload
        # Every passage text is tokenized once: the body, profile and interview indexes are made of them.
        texts = _passage_tokens(index, chunks) if large else tokenize((c.text for c in chunks), cache=cache)
        questions: dict[str, int] = {}
        question_of = [questions.setdefault(c.question, len(questions)) for c in chunks]
        self._body = KeywordIndex(parts=[Part(texts), Part.one_each(tokenize(questions, cache=cache), question_of)])
        del questions, question_of
        # A heading row is the words of the project, the adopter and each heading (" ".join of them): the few
        # distinct names and headings are tokenized once each.
        pieces: dict[str, int] = {}
        items, sizes = array("q"), array("q", [0])
        for c in chunks:
            items.append(pieces.setdefault(c.project, len(pieces)))
            items.append(pieces.setdefault(c.adopter, len(pieces)))
            items.extend(pieces.setdefault(h, len(pieces)) for h in c.heading_path)
            sizes.append(len(items))
        self._heading = KeywordIndex(parts=[Part(tokenize(pieces, cache=cache), np.frombuffer(items, dtype=np.int64),
                                                 np.frombuffer(sizes, dtype=np.int64))])
        del pieces, items, sizes
        self._sentence_kw: KeywordIndex | None = None
        self._sampled_kw: SampledSentenceKeyword | None = None
        if large:
            # Sentences are not numbered across the index: nothing (no sentence vectors) is indexed by them.
            self.sentence_rows: Sequence[range] = _Unnumbered(n)
            self.sentence_count: int | None = None
            self._sentence_owner = np.zeros(0, dtype=np.int64)
        else:
            # Sentences are numbered across the index (chunk by chunk); only their texts' keyword index is kept,
            # the Sentence objects of a chunk are made again when it is quoted (sentences_of).
            sentence_texts: list[str] = []
            owner: list[int] = []
            self.sentence_rows = []  # per chunk: its sentences' positions in the numbering
            for r, c in enumerate(chunks):
                start = len(sentence_texts)
                sentence_texts.extend(s.text for s in chunk_sentences(c))
                owner.extend([r] * (len(sentence_texts) - start))
                self.sentence_rows.append(range(start, len(sentence_texts)))
            self.sentence_count = len(sentence_texts)
            self._sentence_owner = np.array(owner, dtype=np.int64)
            if aux is not None and len(aux.sentence_owner) != len(owner):
                logger.warning("sentence vectors do not match the index; using passage vectors only")
                aux = None
            self._sentence_kw = KeywordIndex(sentence_texts, cache=cache)
            del sentence_texts, owner
        self.aux = aux
        # Names: computed once per distinct adopter and project (a few per interview), not per passage.
        adopter_key = {a: name_key(a) for a in {c.adopter for c in chunks}}
        project_key = {pr: name_key(pr) for pr in {c.project for c in chunks}}
        self._adopter_keys = np.array([adopter_key[c.adopter] for c in chunks], dtype=object)
        self._project_keys = np.array([project_key[c.project] for c in chunks], dtype=object)
        self._adopter_terms: dict[str, set[str]] = {}
        self._project_terms: dict[str, set[str]] = {}
        for c in reversed(chunks):  # the last passage with a key names it, as a dict built in order would
            if adopter_key[c.adopter] not in self._adopter_terms:
                self._adopter_terms[adopter_key[c.adopter]] = set(terms(c.adopter))
            if project_key[c.project] not in self._project_terms:
                self._project_terms[project_key[c.project]] = set(terms(c.project))
        self.adopter_names = frozenset(adopter_key.values())
        self.project_names = frozenset(project_key.values())
        self._raw_projects = sorted(project_key)
        self.vocabulary = self._body.vocab | self._heading.vocab
        # Every word of every adopter and project name, lower-cased alphanumerics ("meadows", "intoto").
        self.known_name_words = {re.sub(r"[^a-z0-9]", "", w) for name in (*adopter_key, *project_key)
                                 for w in re.split(r"[\s,]+", name.lower())} | self.adopter_names \
            | self.project_names
        del adopter_key, project_key
        self._sentences: dict[int, list[Sentence]] = {}  # on demand, like _passage_terms: the quoted passages
        self._sentence_terms: dict[int, list[frozenset[str]]] = {}  # on demand, beside _sentences
        self._passage_terms: dict[int, frozenset[str]] = {}  # on demand: the answer checks a few rows per question
        sources = sorted({c.source for c in chunks})
        pos = {src: i for i, src in enumerate(sources)}
        self.doc_of = np.array([pos[c.source] for c in chunks], dtype=np.int64)
        rows_of: dict[int, list[int]] = {}
        for r, d in enumerate(self.doc_of.tolist()):
            rows_of.setdefault(d, []).append(r)
        # Who each interviewee is, so a description ("the Dutch bank") finds the right interview.
        profile_rows = [_profile_rows(chunks, rows_of[d]) for d in range(len(sources))]
        in_profile = {r for rows in profile_rows for r in rows}
        self._profile_weight = np.array([p_self if r in in_profile else 1.0 for r in range(len(chunks))],
                                        dtype=np.float32) if (p_self := self.params.profile_self) != 1.0 else 1.0
        # The sentences that say who each interviewee is (positions in the sentence numbering), for a description.
        self._profile_sentences = np.array([k for r in sorted(in_profile) for k in self.sentence_rows[r]],
                                           dtype=np.int64)
        names = tokenize(f"{chunks[rows_of[d][0]].project} {chunks[rows_of[d][0]].adopter}"
                         for d in range(len(sources)))
        self._profiles = KeywordIndex(parts=[Part(names), Part.groups(texts, profile_rows)])
        # Each whole interview as one text: how much of the question it talks about anywhere.
        self._interviews = KeywordIndex(parts=[Part.groups(texts, [rows_of[d] for d in range(len(sources))])])
        del texts, names, profile_rows
        if large:
            self._sampled_kw = SampledSentenceKeyword(chunks, self._body, self.sentences_of)
        dim = self._vectors.shape[1] if self._vectors.ndim == 2 and len(self._vectors) else 1
        self._centroids = np.zeros((len(sources), dim), dtype=np.float32)
        approximate = index.manifest.ann != "flat" and len(chunks) > DENSE_CANDIDATES
        mapped = getattr(index.vectors, "_mmap", None) if approximate else None
        if len(chunks):
            from scipy.sparse import csr_matrix

            members = csr_matrix((np.ones(len(chunks), dtype=np.float32), (self.doc_of, np.arange(len(chunks)))),
                                 shape=(len(sources), len(chunks)))
            if mapped is None:
                self._centroids = np.asarray(members @ self._vectors, dtype=np.float32)
            else:
                # Block by block, each block's pages dropped after use: the vector file never is all resident.
                for start in range(0, len(chunks), _VECTOR_BLOCK):
                    stop = min(start + _VECTOR_BLOCK, len(chunks))
                    self._centroids += np.asarray(members[:, start:stop] @ self._vectors[start:stop], dtype=np.float32)
                    _drop_pages(mapped)
            norms = np.linalg.norm(self._centroids, axis=1, keepdims=True)
            self._centroids /= np.where(norms > 0, norms, 1.0)
        # An approximate (IVF) index is large: each question scores the DENSE_CANDIDATES nearest passages through
        # it instead of scanning every vector, so the vector file is not kept in memory (its pages were dropped
        # above; the sample's rows are read from the file).
        self._dense_sample: np.ndarray | None = None
        if approximate:
            rows = np.sort(np.random.default_rng(0).choice(len(chunks), min(DENSE_SAMPLE, len(chunks)),
                                                            replace=False))
            self._dense_sample = _read_rows(index.vectors, rows) if mapped is not None \
                else np.array(self._vectors[rows], dtype=np.float32)

    def _dense(self, qv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cosine of the question with every passage, and its standard scores.

        Flat index: exact, by a scan. IVF index: the DENSE_CANDIDATES nearest passages get the index's (8-bit)
        cosines, every other passage the mean of the sampled cosines below the candidates' lowest; the standard
        scores use the mean and spread of DENSE_SAMPLE passages' exact cosines, as a full scan would."""
        n = len(self.index.chunks)
        if not n:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.float32)
        if self._dense_sample is None:
            dense = _dot(self._vectors, qv)
            return dense, _z(dense)
        q = np.ascontiguousarray(np.asarray(qv, dtype=np.float32).reshape(1, -1))
        scores, rows = self.index.faiss_index.search(q, DENSE_CANDIDATES)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep], scores[0][keep]
        sample = _dot(self._dense_sample, qv)
        floor = float(scores.min()) if len(scores) else float(sample.max())
        below = sample[sample < floor]
        dense = np.full(n, float(below.mean()) if len(below) else floor, dtype=np.float32)
        dense[rows] = scores
        sd = float(sample.std())
        z = np.clip((dense - float(sample.mean())) / sd, -Z_CAP, Z_CAP) if sd > 1e-9 else np.zeros_like(dense)
        return dense, z.astype(np.float32)

    def sentences_of(self, row: int) -> list[Sentence]:
        """The sentences of the passage in `row` (positions `sentence_rows[row]` in the numbering)."""
        found = self._sentences.get(row)
        if found is None:
            found = chunk_sentences(self.index.chunks[row])
            if len(self._sentences) >= PASSAGE_TERMS_CACHE:
                self._sentences.clear()  # bounded like passage_terms: ~1 KB per passage
            self._sentences[row] = found
        return found

    def sentence_terms(self, row: int) -> list[frozenset[str]]:
        """Stemmed content words of each sentence of `sentences_of(row)` (what a quote's coverage counts)."""
        found = self._sentence_terms.get(row)
        if found is None:
            found = [frozenset(terms(s.text)) for s in self.sentences_of(row)]
            if len(self._sentence_terms) >= PASSAGE_TERMS_CACHE:
                self._sentence_terms.clear()  # bounded like sentences_of
            self._sentence_terms[row] = found
        return found

    def passage_terms(self, row: int) -> frozenset[str]:
        """Stemmed content words of a passage with its heading path, project and adopter."""
        found = self._passage_terms.get(row)
        if found is None:
            c = self.index.chunks[row]
            found = frozenset(terms(" ".join((c.project, c.adopter, *c.heading_path, c.text))))
            if len(self._passage_terms) >= PASSAGE_TERMS_CACHE:
                self._passage_terms.clear()  # bounded: a long-running server sees every passage in time
            self._passage_terms[row] = found
        return found

    def df(self, term: str) -> int:
        """In how many passages a stemmed term occurs."""
        return self._body.df.get(term, 0)

    def idf(self, term: str) -> float:
        """How rare a stemmed term is among the passages (highest for one no passage has)."""
        return self._body.idf(term)

    def with_fusion(self, fusion: FusionWeights | None) -> "Retriever":
        """A retriever over the same index ranking by other fusion weights (for fitting and comparisons)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.fusion = fusion
        return clone

    def with_params(self, **changes: float) -> "Retriever":
        """A retriever over the same index with some weights changed (for tuning and baselines)."""
        clone = object.__new__(Retriever)
        clone.__dict__.update(self.__dict__)
        clone.params = replace(self.params, **changes)
        return clone

    def score(self, query: str, query_vector: np.ndarray | None = None, adopter: str | None = None,
              project: str | None = None) -> Scores:
        """Scores of every chunk and sentence for `query` (`adopter`: the filter, ranked like a named one;
        `project`: the filter, which only a large index's candidate choice looks at)."""
        if self.fusion is not None:
            F, scores = self.features(query, query_vector, adopter, project)
            scores.fused = fuse(F, self.fusion.vector())
            return scores
        p = self.params
        qv = self.embedder.embed_query(embedding_query(query)) if query_vector is None else query_vector
        adopters = names_in(query, self.adopter_names)
        projects = names_in(query, self.project_names)
        # A named adopter steers through its boost; its name would only add noise to keyword matching.
        named = set().union(*(self._adopter_terms.get(a, set()) for a in adopters))
        if p.scope_terms:
            # "KServe adopters": every passage in scope says KServe, so the word only adds noise there too.
            named |= set().union(*(self._project_terms.get(s, set()) for s in scoped_projects(query, projects)))
        described = set(terms(" ".join(descriptions(query)))) if not adopters else set()
        if described and p.places:
            # A demonym also matches its country: "the Italian retailer" is introduced as "... in Italy".
            words = re.findall(r"[A-Za-z]+", " ".join(descriptions(query)))
            described |= {t for w in words if w[:1].isupper() for v in place_variants(w) for t in terms(v)
                          if t in self._profiles.vocab}
        qterms = [t for t in terms(query) if t not in named]
        if described and p.strip_description:
            qterms = [t for t in qterms if t not in described] or qterms

        qv_pass = qv
        if described and p.described_query:
            stripped = self.embedder.embed_query(embedding_query(without_descriptions(query)))
            mix = (1 - p.described_query) * np.asarray(qv, dtype=np.float32) + p.described_query * stripped
            qv_pass = mix / (float(np.linalg.norm(mix)) or 1.0)
        dense, dense_z = self._dense(qv_pass)
        body = self._body.scores(qterms)
        sentence_kw = self._sentence_kw.scores(qterms) if self._sentence_kw is not None \
            else np.zeros(0, dtype=np.float32)
        heading_kw = self._heading.scores(qterms)
        fused = p.dense * dense_z + p.body * _z(body) + p.heading * _z(heading_kw)
        if p.sentence_kw and len(sentence_kw):
            fused += p.sentence_kw * _z(self._best_sentence_kw(sentence_kw))
        later: list[np.ndarray] = []  # what is added after the best-sentence BM25, in this order
        sentence, sentence_dense, heading_cos = self._sentence_signals(qv_pass, dense)
        if heading_cos is not None:
            later.append(p.heading_dense * _z(heading_cos))
        later.append(p.sentence * (_z(sentence) if sentence_dense is not None else dense_z))
        if p.interview and len(self._centroids):
            later.append(p.interview * _z(_dot(self._centroids, qv))[self.doc_of])
        if p.profile:
            # The profile passages themselves already match the description word for word: the boost goes
            # to the rest of the interview, where the answer to "what did the Dutch bank say" is.
            later.append(p.profile * _z(self._profiles.scores(qterms))[self.doc_of] * self._profile_weight)
        if described and p.described:
            later.append(p.described * _z(self._profiles.scores(sorted(described)))[self.doc_of])
        described_doc = -1
        if described and p.described_dense and self.aux is not None and len(self._profile_sentences):
            match = _z(self._description_match(descriptions(query)))
            later.append(p.described_dense * match[self.doc_of])
            if p.described_local and len(match) > 1:
                first, second = np.sort(match)[::-1][:2]
                if first - second >= p.described_local:
                    described_doc = int(np.argmax(match))
        # Over whole interviews a project's name only says which project an interview is about (the project
        # boost's job), so named projects' words are left out of this match.
        pnames = set().union(*(self._project_terms.get(name, set()) for name in projects))
        interview_kw = (_z(self._interviews.scores([t for t in qterms if t not in pnames]))
                        if len(self._centroids) else np.zeros(0))
        if p.interview_kw and len(interview_kw):
            later.append(p.interview_kw * interview_kw[self.doc_of])
        filter_rows = (np.array([matches(c, None, adopter) for c in self.index.chunks], dtype=bool)
                       if adopter and p.filter_local else None)
        project_boost = self._project_boost(query, projects) if projects else None
        if p.sentence_kw and self._sampled_kw is not None:
            # Large index: the candidates for exact best-sentence scores are the best by everything else.
            key = fused + sum(later)
            if adopters:
                key += p.adopter_boost * np.isin(self._adopter_keys, list(adopters))
            elif described_doc >= 0:
                key += p.described_boost * (self.doc_of == described_doc)
            if project_boost is not None:
                key += project_boost
            for wanted in (filter_rows, self._project_filter(project)):
                if wanted is not None:
                    key += 1e6 * wanted  # a filtered question ranks only these
            best_kw, mean, sd = self._sampled_kw.scores(qterms, body, key)
            if sd > 1e-9:
                fused += p.sentence_kw * np.clip((best_kw - mean) / sd, -Z_CAP, Z_CAP).astype(np.float32)
        for contribution in later:
            fused += contribution
        named_rows = None
        if adopters:
            named_rows = np.isin(self._adopter_keys, list(adopters))
            fused += p.adopter_boost * named_rows
        if filter_rows is not None:
            named_rows = filter_rows
        if named_rows is None and described_doc >= 0:
            named_rows = self.doc_of == described_doc
            fused += p.described_boost * named_rows
        if named_rows is not None:
            if p.local_z and named_rows.sum() > 2:
                # Which of the named interview's passages answers is decided among its passages: standard
                # scores over all passages would let the signal that varies most across interviews (not
                # within this one) decide. The mix keeps the interview's mean and spread of fused scores.
                parts = [(p.dense, dense), (p.body, body), (p.heading, heading_kw), (p.sentence, sentence)]
                if heading_cos is not None:
                    parts.append((p.heading_dense, heading_cos))
                local = sum(w * _z(x[named_rows]) for w, x in parts)
                cur = fused[named_rows]
                sd = float(local.std()) or 1.0
                mixed = float(cur.mean()) + local * (float(cur.std()) / sd)
                if described_doc >= 0 and not adopters and not adopter:
                    # Described, not named: no boost lifts the interview, so its best passage keeps its score.
                    mixed += float(cur.max()) - float(mixed.max())
                fused[named_rows] = (1 - p.local_z) * cur + p.local_z * mixed
        if project_boost is not None:
            fused += project_boost
        project_terms = set().union(*(self._project_terms.get(name, set()) for name in projects))
        return Scores(dense, sentence, body, fused, sentence_dense, sentence_kw, qterms, project_terms, adopters,
                      projects, interview_kw)

    def _best_sentence_kw(self, sentence_kw: np.ndarray) -> np.ndarray:
        """Per chunk: the BM25 of its best-matching sentence."""
        best_kw = np.zeros(len(self.index.chunks), dtype=np.float32)
        np.maximum.at(best_kw, self._sentence_owner, sentence_kw)
        return best_kw

    def _sentence_signals(self, qv: np.ndarray, dense: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Per chunk the best sentence cosine (its passage cosine without sentence vectors), per sentence the
        cosine, and per chunk the cosine of its question heading (both None without sentence vectors)."""
        if self.aux is None:
            return dense, None, None
        sentence_dense = _dot(self.aux.sentence_vectors, qv)
        best = np.full(len(self.index.chunks), -1.0, dtype=np.float32)
        np.maximum.at(best, self._sentence_owner, sentence_dense)
        sentence = np.where(best > -1.0, best, dense)  # a chunk without sentences keeps its cosine
        return sentence, sentence_dense, _dot(self.aux.heading_vectors, qv)

    def features(self, query: str, query_vector: np.ndarray | None = None, adopter: str | None = None,
                 project: str | None = None) -> tuple[np.ndarray, Scores]:
        """Every passage's signals for `query` (columns in `fusion.SIGNALS` order) and the scores behind them
        (`fused` left empty: `fuse` makes it from a weight vector)."""
        p = self.params
        n = len(self.index.chunks)
        col = {name: i for i, name in enumerate(SIGNALS)}
        F = np.zeros((n, len(SIGNALS)), dtype=np.float32)
        qv = self.embedder.embed_query(embedding_query(query)) if query_vector is None else query_vector
        adopters = names_in(query, self.adopter_names)
        projects = names_in(query, self.project_names)
        # A named adopter steers through `named`; its name would only add noise to keyword matching, and so
        # would the project of "KServe adopters", which every passage in scope says.
        named = set().union(*(self._adopter_terms.get(a, set()) for a in adopters))
        named |= set().union(*(self._project_terms.get(s, set()) for s in scoped_projects(query, projects)))
        described = set(terms(" ".join(descriptions(query)))) if not adopters else set()
        if described:
            # A demonym also matches its country: "the Italian retailer" is introduced as "... in Italy".
            words = re.findall(r"[A-Za-z]+", " ".join(descriptions(query)))
            described |= {t for w in words if w[:1].isupper() for v in place_variants(w) for t in terms(v)
                          if t in self._profiles.vocab}
        qterms = [t for t in terms(query) if t not in named]
        if described:
            qterms = [t for t in qterms if t not in described] or qterms
        qv_pass = qv
        if described:
            # The description says who, not what: passage cosines use the question half without it.
            stripped = self.embedder.embed_query(embedding_query(without_descriptions(query)))
            mix = (1 - p.described_query) * np.asarray(qv, dtype=np.float32) + p.described_query * stripped
            qv_pass = mix / (float(np.linalg.norm(mix)) or 1.0)
        dense, F[:, col["dense"]] = self._dense(qv_pass)
        body = self._body.scores(qterms)
        F[:, col["body"]] = _z(body)
        heading_kw = self._heading.scores(qterms)
        F[:, col["heading"]] = _z(heading_kw)
        sentence_kw = self._sentence_kw.scores(qterms) if self._sentence_kw is not None \
            else np.zeros(0, dtype=np.float32)
        if len(sentence_kw):
            F[:, col["sentence_kw"]] = _z(self._best_sentence_kw(sentence_kw))
        sentence, sentence_dense, heading_cos = self._sentence_signals(qv_pass, dense)
        if heading_cos is not None:
            F[:, col["heading_dense"]] = _z(heading_cos)
            F[:, col["sentence"]] = _z(sentence)
        else:
            F[:, col["sentence"]] = F[:, col["dense"]]
        if len(self._centroids):
            F[:, col["interview"]] = _z(_dot(self._centroids, qv))[self.doc_of]
            F[:, col["profile"]] = _z(self._profiles.scores(qterms))[self.doc_of]
        if described:
            F[:, col["described"]] = _z(self._profiles.scores(sorted(described)))[self.doc_of]
            if self.aux is not None and len(self._profile_sentences):
                F[:, col["described_dense"]] = _z(self._description_match(descriptions(query)))[self.doc_of]
        # Over whole interviews a project's name only says which project an interview is about (the project
        # signal's job), so named projects' words are left out of this match.
        pnames = set().union(*(self._project_terms.get(name, set()) for name in projects))
        interview_kw = (_z(self._interviews.scores([t for t in qterms if t not in pnames]))
                        if len(self._centroids) else np.zeros(0))
        if len(interview_kw):
            F[:, col["interview_kw"]] = interview_kw[self.doc_of]
        named_rows = None
        if adopter:
            named_rows = np.array([matches(c, None, adopter) for c in self.index.chunks], dtype=bool)
        elif adopters:
            named_rows = np.isin(self._adopter_keys, list(adopters))
        if named_rows is not None:
            F[:, col["named"]] = named_rows
            if named_rows.sum() > 2:
                for name, x in (("local_dense", dense), ("local_sentence", sentence), ("local_body", body),
                                ("local_heading", heading_kw)):
                    F[named_rows, col[name]] = _z(x[named_rows])
        if projects:
            counts = {name: max(1, name_counts(query, name)) for name in projects}
            total = sum(counts.values())
            scoped = scoped_projects(query, projects)
            for name, count in counts.items():
                F[:, col["scope" if name in scoped else "project"]] += (count / total) * (self._project_keys == name)
        if self._sampled_kw is not None:
            # Large index: exact best-sentence BM25 only for the best candidates by everything else.
            weights = self.fusion.vector() if self.fusion is not None else np.ones(len(SIGNALS), dtype=np.float32)
            key = fuse(F, weights)
            for wanted in (named_rows, self._project_filter(project)):
                if wanted is not None:
                    key = key + 1e6 * wanted  # a filtered question ranks only these
            best_kw, mean, sd = self._sampled_kw.scores(qterms, body, key)
            if sd > 1e-9:
                F[:, col["sentence_kw"]] = np.clip((best_kw - mean) / sd, -Z_CAP, Z_CAP)
        project_terms = set().union(*(self._project_terms.get(name, set()) for name in projects))
        empty = np.zeros(0, dtype=np.float32)
        return F, Scores(dense, sentence, body, empty, sentence_dense, sentence_kw, qterms, project_terms,
                         adopters, projects, interview_kw)

    def _project_boost(self, query: str, projects: set[str]) -> np.ndarray:
        """What each passage gets for the projects the question names.

        Named projects share the boost by how often each is named: in "do Tekton adopters find Tekton harder to
        run than Kubernetes?" Tekton gets two thirds."""
        p = self.params
        counts = {name: max(1, name_counts(query, name)) for name in projects}
        scoped = scoped_projects(query, projects)
        if scoped and p.scope_share < 1.0:
            # "What do Tekton adopters think of Kubernetes?": the answer is in Tekton interviews.
            counts = {name: c * (1.0 if name in scoped else p.scope_share) for name, c in counts.items()}
        total = sum(counts.values())
        boost = p.scope_boost if scoped else p.project_boost
        # Each passage has one project, so this sum adds to each passage exactly what adding name by name did.
        added = np.zeros(len(self.index.chunks), dtype=np.float64)
        for name, count in counts.items():
            added += boost * count / total * (self._project_keys == name)
        return added

    def _project_filter(self, project: str | None) -> np.ndarray | None:
        """The passages a `project` filter keeps, or None without one (see `matches`)."""
        if not project:
            return None
        wanted = normalize_name(project)
        return np.isin(self._project_keys, [name_key(r) for r in self._raw_projects if normalize_name(r) == wanted])

    def _description_match(self, phrases: list[str]) -> np.ndarray:
        """Per interview: the best cosine of a description with a sentence that says who the interviewee is."""
        vectors = self.aux.sentence_vectors[self._profile_sentences]
        owners = self.doc_of[self._sentence_owner[self._profile_sentences]]
        total = np.zeros(len(self._centroids), dtype=np.float32)
        for phrase in phrases:
            best = np.full(len(self._centroids), -1.0, dtype=np.float32)
            np.maximum.at(best, owners, _dot(vectors, self.embedder.embed_query(phrase)))
            # An interview without profile sentences gets the lowest cosine any interview has.
            total += np.where(best > -1.0, best, float(best[best > -1.0].min()))
        return total

    def retrieve(self, query: str, k: int = 10, project: str | None = None, adopter: str | None = None,
                 repeat_penalty: float | None = None) -> Retrieval:
        """Top-k hits with the scores behind them; filters restrict, diversity spreads across interviews."""
        chunks = self.index.chunks
        if not chunks or k <= 0:
            return Retrieval([], self.score(query) if chunks else _empty_scores())
        s = self.score(query, adopter=adopter, project=project)
        rows = np.arange(len(chunks))
        if project or adopter:
            rows = np.array([i for i in rows if matches(chunks[i], project, adopter)], dtype=np.int64)
            if not len(rows):
                return Retrieval([], s)
        order = rows[_top(s.fused[rows], max(k, self.params.candidates))]
        # Questions about one adopter keep its passages together; others spread across interviews.
        default = self.fusion.repeat_penalty if self.fusion is not None else self.params.repeat_penalty
        penalty = default if repeat_penalty is None else repeat_penalty
        if len(s.adopters) == 1 or adopter:
            penalty = 0.0
        picked = self._diversify(order, s.fused, k, penalty)
        # One gather per score array (exact floats, as float() of each element would give).
        columns = zip(s.fused[picked].tolist(), s.dense[picked].tolist(), s.body[picked].tolist(),
                      s.sentence[picked].tolist(), self.doc_of[picked].tolist())
        hits = [Hit(chunks[r], fused, dense, body, r, sentence, doc)
                for r, (fused, dense, body, sentence, doc) in zip(picked, columns)]
        return Retrieval(hits, s)

    def search(self, query: str, k: int = 10, project: str | None = None,
               adopter: str | None = None) -> list[Hit]:
        """Top-k hits for `query`, best first, restricted by the filters."""
        return self.retrieve(query, k, project, adopter).hits

    def _diversify(self, order: np.ndarray, fused: np.ndarray, k: int, penalty: float) -> list[int]:
        """Greedy re-rank: each passage loses `penalty` per passage already taken from its interview."""
        if penalty <= 0:
            return [int(r) for r in order[:k]]
        base = fused[order].astype(np.float64)
        docs = self.doc_of[order]
        taken = np.zeros(int(self.doc_of.max()) + 1 if len(self.doc_of) else 1)
        free = np.ones(len(order), dtype=bool)
        picked: list[int] = []
        while len(picked) < min(k, len(order)):
            adjusted = np.where(free, base - penalty * taken[docs], -np.inf)
            i = int(np.argmax(adjusted))  # first maximum: ties keep the original order
            free[i] = False
            taken[docs[i]] += 1
            picked.append(int(order[i]))
        return picked


def _empty_scores() -> Scores:
    empty = np.zeros(0, dtype=np.float32)
    return Scores(empty, empty, empty, empty, None, empty)
