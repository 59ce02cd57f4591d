"""What the search keeps of one loaded index generation: its keyword indexes, names, interview profiles and
centroids, and the index-level lookups (dense cosines, sentences, term sets) the signals and the answer use."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from bot.embed.embedders import Embedder
from bot.index import bm25
from bot.index.bm25 import KeywordMatrix
from bot.index.keyword import terms
from bot.index.store import LoadedIndex
from bot.index.textvectors import AuxVectors
from bot.ingest.chunking import Chunk, chunk_sentences
from bot.ingest.text import Sentence
from bot.search.analysis import KnownNames
from bot.search.query import name_key, normalize_name
from bot.search.sentence_keywords import SampledSentenceKeyword
from bot.search.signals import _dot, _z
from bot.tuning import Z_CAP

logger = logging.getLogger(__name__)

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


def _keyword_matrices(index: LoadedIndex, chunks: Sequence[Chunk], sentences: bool) -> dict[str, KeywordMatrix]:
    """The keyword indexes of a generation, memory-mapped from it; built in memory when it has none saved."""
    folder = Path(index.path) / bm25.FOLDER if getattr(index, "path", None) is not None else None
    if folder is not None and (folder / "body").is_dir():
        names = [name for name in bm25.NAMES if name != "sentences" or (sentences and (folder / name).is_dir())]
        return {name: KeywordMatrix.load(Path(index.path), name) for name in names}
    return {name: KeywordMatrix.of_rows(rows) for name, rows in bm25.row_terms(chunks, sentences=False).items()}


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


_profile_rows = bm25.profile_rows


class IndexState:
    """The per-index structures of the search (the `Retriever` ranks over them)."""

    def __init__(self, index: LoadedIndex, embedder: Embedder, aux: AuxVectors | None = None) -> None:
        self.index = index
        self.embedder = embedder
        chunks = index.chunks
        n = len(chunks)
        self._vectors = np.asarray(index.vectors, dtype=np.float32)
        if aux is not None and len(aux.heading_vectors) != n:
            logger.warning("sentence vectors do not match the index; using passage vectors only")
            aux = None
        # A large index has no sentence vectors and no keyword index of every sentence (bot/search/sentence_keywords.py).
        large = n > SENTENCE_KW_THRESHOLD and aux is None
        # The keyword indexes: bm25s matrices of the generation (memory-mapped, bot/index/bm25.py); built in memory
        # only for an index that has none on disk (tests' hand-made ones).
        keywords = _keyword_matrices(index, chunks, sentences=not large)
        self._body = keywords["body"]
        self._heading = keywords["heading"]
        self._sentence_kw: KeywordMatrix | None = None
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
            self._sentence_kw = keywords.get("sentences")
            if self._sentence_kw is None or self._sentence_kw.size != len(sentence_texts):
                self._sentence_kw = KeywordMatrix.of_rows([terms(t) for t in sentence_texts])
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
        # 0 in the profile passages, 1 elsewhere: the profile signal of the hand-set weights goes to the rest.
        self._outside_profile = np.array([0.0 if r in in_profile else 1.0 for r in range(len(chunks))],
                                         dtype=np.float32)
        # The sentences that say who each interviewee is (positions in the sentence numbering), for a description.
        self._profile_sentences = np.array([k for r in sorted(in_profile) for k in self.sentence_rows[r]],
                                           dtype=np.int64)
        self._profiles = keywords["profiles"]
        # What reading a question needs of this index (bot/search/analysis.py).
        self.known_names = KnownNames(self.adopter_names, self.project_names, self._adopter_terms,
                                      self._project_terms, self._profiles.vocab, self.known_name_words)
        # Each whole interview as one text: how much of the question it talks about anywhere.
        self._interviews = keywords["interviews"]
        del keywords, profile_rows
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
