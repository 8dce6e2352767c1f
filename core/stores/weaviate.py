"""The production vector store: Weaviate through weaviate-client v4 (REST + gRPC).

Chunks live in one collection with explicit properties and a self-provided (bring your own)
vector, so Loupe's embedder stays the single source of vectors on every backend. Search is
Weaviate's hybrid query with relative score fusion, the same fusion `base.fuse` performs for
LanceDB, and each hit's keyword and vector parts are read back from `explain_score`.

With multi-tenancy on, every read and write goes through the workspace's tenant, so one
Weaviate serves several isolated workspaces.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, cast
from urllib.parse import urlsplit

import weaviate
from weaviate.classes.config import Configure, DataType, Property, Tokenization, VectorDistances
from weaviate.classes.init import AdditionalConfig, Auth, Timeout
from weaviate.classes.query import Filter, FilterReturn, HybridFusion, MetadataQuery
from weaviate.collections import Collection
from weaviate.exceptions import UnexpectedStatusCodeError

from core.config import Settings
from core.stores.base import Chunk, Hit, SearchFilter, StoreHealth

VECTOR_NAME = "default"
_BATCH_SIZE = 200
# Tokenizers that Weaviate loads only when the server is started with their flag.
_TOKENIZER_FLAGS = {"kagome_kr": "ENABLE_TOKENIZER_KAGOME_KR", "gse": "ENABLE_TOKENIZER_GSE"}


class StoreWriteError(RuntimeError):
    """Weaviate refused some writes; raised rather than letting chunks go missing silently."""


class WeaviateStore:
    """`VectorStore` on Weaviate. The collection is created on first use."""

    name = "weaviate"

    def __init__(self, settings: Settings, *, dimension: int, collection: str | None = None):
        self._dimension = dimension
        self._tokenization = Tokenization(settings.weaviate_tokenization)
        self._multi_tenancy = settings.weaviate_multi_tenancy
        self._tenant = settings.workspace
        self._client = _connect(settings)
        # Weaviate capitalises the first letter of collection names; keep ours in that form.
        name = collection or settings.weaviate_collection
        self._name = name[:1].upper() + name[1:]
        self._coll: Collection | None = None
        # The app shares one store between sessions' threads; a collection's batch state is not
        # thread-safe, so imports take turns (searches do not wait).
        self._init_lock = threading.Lock()
        self._write_lock = threading.Lock()

    # -- the protocol -------------------------------------------------------------------------

    def upsert(self, chunks: Sequence[Chunk]) -> None:
        if not chunks:
            return
        for chunk in chunks:
            self._check_vector(chunk.vector, chunk.id)
        coll = self._collection()
        with self._write_lock:
            with coll.batch.fixed_size(batch_size=_BATCH_SIZE) as batch:
                for chunk in chunks:
                    assert chunk.vector is not None  # checked above
                    batch.add_object(
                        properties=_properties_of(chunk),
                        uuid=chunk.id,
                        vector={VECTOR_NAME: list(chunk.vector)},
                    )
            failed = coll.batch.failed_objects
        if failed:
            raise StoreWriteError(
                f"Weaviate rejected {len(failed)} of {len(chunks)} chunks "
                f"(collection {self._name}); first error: {failed[0].message}"
            )

    def delete_document(self, document_id: str, *, keep_content_hash: str | None = None) -> int:
        where = Filter.by_property("document_id").equal(document_id)
        if keep_content_hash is not None:
            where = where & Filter.by_property("content_hash").not_equal(keep_content_hash)
        coll = self._collection()
        deleted = 0
        # One call deletes at most the server's QUERY_MAXIMUM_RESULTS objects: repeat until done.
        while True:
            result = coll.data.delete_many(where=where)
            if result.failed:
                raise StoreWriteError(
                    f"Weaviate failed to delete {result.failed} chunks of {document_id}"
                )
            deleted += result.successful
            if result.successful == 0:
                return deleted

    def search(
        self,
        query: str,
        vector: Sequence[float],
        *,
        k: int,
        alpha: float,
        filters: SearchFilter | None = None,
    ) -> list[Hit]:
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must be within [0, 1], got {alpha}")
        self._check_vector(vector, "query")
        if alpha == 0 and not query.strip():
            # Keyword-only search for nothing finds nothing; given an empty query Weaviate
            # would run a vector search instead.
            return []
        result = self._collection().query.hybrid(
            query=query,
            vector=list(vector),
            alpha=alpha,
            limit=k,
            filters=_where(filters),
            target_vector=VECTOR_NAME,
            fusion_type=HybridFusion.RELATIVE_SCORE,
            return_metadata=MetadataQuery(score=True, explain_score=True),
        )
        hits = []
        for obj in result.objects:
            keyword, similarity = parse_explain_score(obj.metadata.explain_score)
            hits.append(
                Hit(
                    chunk=_chunk_from(str(obj.uuid), obj.properties),
                    score=obj.metadata.score or 0.0,
                    keyword_score=keyword,
                    vector_score=similarity,
                )
            )
        return hits

    def count(self, document_id: str | None = None) -> int:
        where = None
        if document_id is not None:
            where = Filter.by_property("document_id").equal(document_id)
        result = self._collection().aggregate.over_all(total_count=True, filters=where)
        return result.total_count or 0

    def iter_chunks(self, batch_size: int = 500) -> Iterator[list[Chunk]]:
        batch: list[Chunk] = []
        for obj in self._collection().iterator(include_vector=True, cache_size=batch_size):
            raw = cast("list[float] | None", obj.vector.get(VECTOR_NAME))
            vector = tuple(raw) if raw else None
            batch.append(_chunk_from(str(obj.uuid), obj.properties, vector))
            if len(batch) >= batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def version_counts(self) -> Counter[tuple[str, str]]:
        """Chunks per (document id, content hash): what `core check` compares with SQL."""
        counts: Counter[tuple[str, str]] = Counter()
        iterator = self._collection().iterator(return_properties=["document_id", "content_hash"])
        for obj in iterator:
            props = obj.properties
            counts[(str(props.get("document_id")), str(props.get("content_hash") or ""))] += 1
        return counts

    def health(self) -> StoreHealth:
        extra = {"collection": self._name}
        if self._multi_tenancy:
            extra["tenant"] = self._tenant
        try:
            if not self._client.is_ready():
                return StoreHealth(ok=False, backend=self.name, detail="not ready", extra=extra)
            extra["version"] = str(self._client.get_meta().get("version", "unknown"))
            # Health must not create the collection, so a fresh server reports 0 chunks.
            exists = self._client.collections.exists(self._name)
            chunks = self.count() if exists else 0
        except Exception as exc:  # health reports failures, whatever their kind
            return StoreHealth(
                ok=False, backend=self.name, detail=f"{type(exc).__name__}: {exc}", extra=extra
            )
        return StoreHealth(ok=True, backend=self.name, detail="ready", chunks=chunks, extra=extra)

    def close(self) -> None:
        self._client.close()

    def drop(self) -> None:
        """Delete the whole collection (every tenant's chunks): for tests and full rebuilds."""
        with self._init_lock:
            self._client.collections.delete(self._name)
            self._coll = None

    # -- internals ------------------------------------------------------------------------------

    def _collection(self) -> Collection:
        """The collection (tenant-scoped when multi-tenant), created on first use.

        Cached because each collection object owns its batch state and thread pool."""
        with self._init_lock:
            if self._coll is None:
                if not self._client.collections.exists(self._name):
                    self._create_collection()
                coll = self._client.collections.use(self._name)
                if self._multi_tenancy:
                    if not coll.tenants.exists(self._tenant):
                        _tolerate_race(lambda: coll.tenants.create(self._tenant))
                    coll = coll.with_tenant(self._tenant)
                self._coll = coll
            return self._coll

    def _create_collection(self) -> None:
        words = self._tokenization
        properties = [
            Property(
                name="text", data_type=DataType.TEXT, tokenization=words, index_filterable=False
            ),
            Property(name="title", data_type=DataType.TEXT, tokenization=words),
            Property(name="heading", data_type=DataType.TEXT, tokenization=words),
            # Ids, hashes and tags are matched whole in filters, never searched as words.
            _exact("document_id", DataType.TEXT),
            _exact("content_hash", DataType.TEXT),
            _exact("tags", DataType.TEXT_ARRAY),
            Property(name="page", data_type=DataType.INT),
            Property(name="position", data_type=DataType.INT),
        ]
        multi_tenancy = (
            Configure.multi_tenancy(enabled=True, auto_tenant_creation=True)
            if self._multi_tenancy
            else None
        )
        _tolerate_race(
            lambda: self._client.collections.create(
                self._name,
                properties=properties,
                vector_config=Configure.Vectors.self_provided(
                    name=VECTOR_NAME,
                    vector_index_config=Configure.VectorIndex.hnsw(
                        distance_metric=VectorDistances.COSINE
                    ),
                ),
                multi_tenancy_config=multi_tenancy,
            )
        )

    def _check_vector(self, vector: Sequence[float] | None, what: str) -> None:
        if vector is None:
            raise ValueError(f"{what}: a vector is required (Weaviate stores self-provided ones)")
        if len(vector) != self._dimension:
            raise ValueError(
                f"{what}: vector has {len(vector)} dimensions, the store expects {self._dimension}"
            )


def _connect(settings: Settings) -> weaviate.WeaviateClient:
    """Embedded Weaviate when asked for, else the server at `WEAVIATE_URL` (HTTP port from the
    URL, gRPC port from settings, same host and TLS for both)."""
    extra = AdditionalConfig(timeout=Timeout(init=10, query=60, insert=180))
    if settings.weaviate_embedded:
        flag = _TOKENIZER_FLAGS.get(settings.weaviate_tokenization)
        return weaviate.connect_to_embedded(
            persistence_data_path=str(settings.data_dir / "weaviate"),
            environment_variables={flag: "true"} if flag else None,
            additional_config=extra,
        )
    if not settings.weaviate_url:
        raise ValueError("set WEAVIATE_URL (or WEAVIATE_EMBEDDED=true) to use the Weaviate store")
    url = urlsplit(settings.weaviate_url)
    if url.scheme not in ("http", "https") or not url.hostname or url.path not in ("", "/"):
        raise ValueError(f"WEAVIATE_URL must look like http(s)://host[:port], got {url.geturl()}")
    secure = url.scheme == "https"
    key = settings.weaviate_api_key
    return weaviate.connect_to_custom(
        http_host=url.hostname,
        http_port=url.port or (443 if secure else 80),
        http_secure=secure,
        grpc_host=url.hostname,
        grpc_port=settings.weaviate_grpc_port,
        grpc_secure=secure,
        auth_credentials=Auth.api_key(key.get_secret_value()) if key else None,
        additional_config=extra,
    )


def _tolerate_race(create: Callable[[], object]) -> None:
    """Run a create call; another app replica creating the same thing first is not an error."""
    try:
        create()
    except UnexpectedStatusCodeError as exc:
        if "already exists" not in str(exc).lower():
            raise


def _exact(name: str, data_type: DataType) -> Property:
    return Property(
        name=name,
        data_type=data_type,
        tokenization=Tokenization.FIELD,
        index_searchable=False,
        skip_vectorization=True,
    )


def _where(filters: SearchFilter | None) -> FilterReturn | None:
    """Documents and tags both restrict (AND); within each, any listed value matches."""
    if filters is None or filters.empty:
        return None
    parts = []
    if filters.document_ids:
        parts.append(Filter.by_property("document_id").contains_any(list(filters.document_ids)))
    if filters.tags:
        parts.append(Filter.by_property("tags").contains_any(list(filters.tags)))
    return parts[0] if len(parts) == 1 else Filter.all_of(parts)


def _properties_of(chunk: Chunk) -> dict[str, Any]:
    props: dict[str, Any] = {
        "text": chunk.text,
        "title": chunk.title,
        "document_id": chunk.document_id,
        "content_hash": chunk.content_hash,
        "position": chunk.position,
        "tags": list(chunk.tags),
    }
    if chunk.page is not None:
        props["page"] = chunk.page
    if chunk.heading is not None:
        props["heading"] = chunk.heading
    return props


def _chunk_from(
    uuid: str, props: Mapping[str, Any], vector: tuple[float, ...] | None = None
) -> Chunk:
    page, heading = props.get("page"), props.get("heading")
    return Chunk(
        id=uuid,
        document_id=str(props["document_id"]),
        text=str(props.get("text") or ""),
        title=str(props.get("title") or ""),
        position=int(props["position"]),
        content_hash=str(props["content_hash"]),
        page=int(page) if page is not None else None,
        heading=str(heading) if heading is not None else None,
        tags=tuple(props.get("tags") or ()),
        vector=vector,
    )


# Relative score fusion explains each hit with one entry per result set it came from, written
# by FusionRelativeScore in Weaviate's hybrid search package (usecases/traverser/hybrid):
#   fmt.Sprintf("Hybrid (Result Set %v) Document %v: original score %v, normalized score: %v",
#               names[i], res.ID, res.SecondarySortValue, score)
# Older servers wrote "(Result Set 'keyword') Document ..." instead. Entries of one hit are
# joined with " - " and newlines. The "keyword" set's original score is the BM25 score; the
# "vector" set's is 1 - distance, i.e. cosine similarity with a cosine index (sub-searches name
# it "vector,nearVector"). Numbers are Go's %v of a float32: 0.5, 2, 1.2e-05, NaN, +Inf.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?Inf|NaN"
_EXPLAIN_ENTRY = re.compile(
    r"\(Result Set '?(?P<set>[^')]+?)'?\) Document \S+: "
    rf"original score (?P<original>{_NUMBER}), normalized score: (?:{_NUMBER})"
)


def parse_explain_score(explain: str | None) -> tuple[float | None, float | None]:
    """(BM25 score, cosine similarity) from a hybrid hit's `explain_score`; None for a part the
    hit did not come from or that cannot be read (e.g. ranked fusion, which omits raw scores)."""
    keyword: float | None = None
    vector: float | None = None
    for match in _EXPLAIN_ENTRY.finditer(explain or ""):
        value = float(match["original"])  # float() reads Go's NaN and +Inf too
        if not math.isfinite(value):
            continue
        result_set = match["set"].strip()
        if result_set.startswith(("keyword", "bm25")) and keyword is None:
            keyword = value
        elif result_set.startswith("vector") and vector is None:
            vector = value
    return keyword, vector
